/*
 * LD_PRELOAD shim for the slow-storage test: every fsync() and fdatasync() waits first, as on a worn
 * SD card. The delay in milliseconds is read, at each call, from the file named by SLOW_FSYNC_FILE
 * (so a test can start and end the stall while the process runs), else from SLOW_FSYNC_MS.
 * Build: cc -shared -fPIC -O2 -o slow-fsync.so slow-fsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long stall_ms(void) {
  const char *path = getenv("SLOW_FSYNC_FILE");
  if (path) {
    char text[32] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t n = read(fd, text, sizeof text - 1);
      close(fd);
      if (n > 0) return atol(text);
    }
  }
  const char *ms = getenv("SLOW_FSYNC_MS");
  return ms ? atol(ms) : 0;
}

static void stall(void) {
  long ms = stall_ms();
  if (ms <= 0) return;
  struct timespec wait = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&wait, &wait) != 0) {
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  stall();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  stall();
  return real(fd);
}
