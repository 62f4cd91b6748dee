/*
 * tcp-load: a cheap load client for the health-check benchmark (scripts/bench/health-checks.ts).
 *
 *   tcp-load HOST PORT CONNECTIONS DURATION_S WARMUP_S keep|connect [LINE]
 *
 * keeps CONNECTIONS requests in flight from one thread with epoll, for WARMUP_S + DURATION_S
 * seconds, and counts only what completes after the warm-up:
 *   keep     one connection each, kept open: send LINE, read one reply line, send again;
 *   connect  the Monitor's pattern: connect, send LINE, read the reply line, close, start over.
 * Latency is from the send (keep) or from connect() (connect) to the reply's newline.
 * Prints one JSON object: counts, errors, the client's own CPU time, and a latency histogram in
 * microseconds as [[us, count], ...] (1 us buckets below 200 ms, the rest counted as overflow).
 *
 * Built at bench time: gcc -O2 -o .bench/tcp-load scripts/bench/tcp-load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 200000
#define MAX_CONNECTIONS 1024

enum state { CONNECTING, AWAITING_REPLY };

struct conn {
  int fd;
  enum state state;
  uint64_t started_ns;
  size_t got;
  char buf[256];
};

static uint32_t hist[HIST_US];
static uint64_t overflow, count, ok_replies, other_replies, errors, connect_errors, max_us;
static struct sockaddr_in address;
static const char *line = "STATUS?\n";
static size_t line_len;
static int epfd, keep_open;
static uint64_t measure_from_ns, measure_until_ns;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void watch(struct conn *c, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(epfd, op, c->fd, &ev) != 0) {
    perror("epoll_ctl");
    exit(2);
  }
}

static int send_line(struct conn *c) {
  c->got = 0;
  ssize_t n = write(c->fd, line, line_len);
  return n == (ssize_t)line_len ? 0 : -1;
}

static void open_conn(struct conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    perror("socket");
    exit(2);
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->started_ns = now_ns();
  c->got = 0;
  int rc = connect(c->fd, (struct sockaddr *)&address, sizeof address);
  if (rc == 0) {
    c->state = AWAITING_REPLY;
    if (send_line(c) != 0) errors++;
    watch(c, EPOLLIN, EPOLL_CTL_ADD);
  } else if (errno == EINPROGRESS) {
    c->state = CONNECTING;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
  } else {
    connect_errors++;
    close(c->fd);
    c->fd = -1;
  }
}

static void restart(struct conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  open_conn(c);
}

static void record(uint64_t started_ns, uint64_t done_ns) {
  if (done_ns < measure_from_ns || done_ns > measure_until_ns) return;
  uint64_t us = (done_ns - started_ns) / 1000;
  count++;
  if (us > max_us) max_us = us;
  if (us < HIST_US) hist[us]++;
  else overflow++;
}

static void on_connected(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    connect_errors++;
    restart(c);
    return;
  }
  c->state = AWAITING_REPLY;
  if (send_line(c) != 0) {
    errors++;
    restart(c);
    return;
  }
  watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

static void on_readable(struct conn *c) {
  ssize_t n = read(c->fd, c->buf + c->got, sizeof c->buf - c->got - 1);
  if (n <= 0) {
    if (n < 0 && errno == EAGAIN) return;
    errors++;
    restart(c);
    return;
  }
  c->got += (size_t)n;
  char *newline = memchr(c->buf, '\n', c->got);
  if (!newline) {
    if (c->got >= sizeof c->buf - 1) {
      errors++;
      restart(c);
    }
    return;
  }
  uint64_t done = now_ns();
  record(c->started_ns, done);
  if (done >= measure_from_ns && done <= measure_until_ns) {
    if (newline - c->buf == 2 && memcmp(c->buf, "OK", 2) == 0) ok_replies++;
    else other_replies++;
  }
  if (keep_open) {
    c->started_ns = now_ns();
    if (send_line(c) != 0) {
      errors++;
      restart(c);
    }
  } else {
    restart(c);
  }
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s HOST PORT CONNECTIONS DURATION_S WARMUP_S keep|connect [LINE]\n", argv[0]);
    return 2;
  }
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) {
    fprintf(stderr, "tcp-load: %s is not an IPv4 address\n", argv[1]);
    return 2;
  }
  int connections = atoi(argv[3]);
  double duration_s = atof(argv[4]), warmup_s = atof(argv[5]);
  keep_open = strcmp(argv[6], "keep") == 0;
  if (!keep_open && strcmp(argv[6], "connect") != 0) {
    fprintf(stderr, "tcp-load: mode must be keep or connect\n");
    return 2;
  }
  if (argc > 7) line = argv[7];
  line_len = strlen(line);
  if (connections < 1 || connections > MAX_CONNECTIONS) {
    fprintf(stderr, "tcp-load: 1..%d connections\n", MAX_CONNECTIONS);
    return 2;
  }

  epfd = epoll_create1(EPOLL_CLOEXEC);
  uint64_t start = now_ns();
  measure_from_ns = start + (uint64_t)(warmup_s * 1e9);
  measure_until_ns = measure_from_ns + (uint64_t)(duration_s * 1e9);
  double cpu_at_measure = -1;

  static struct conn conns[MAX_CONNECTIONS];
  for (int i = 0; i < connections; i++) {
    conns[i].fd = -1;
    open_conn(&conns[i]);
  }
  struct epoll_event events[MAX_CONNECTIONS];
  for (;;) {
    uint64_t now = now_ns();
    if (now > measure_until_ns) break;
    if (cpu_at_measure < 0 && now >= measure_from_ns) cpu_at_measure = cpu_seconds();
    int n = epoll_wait(epfd, events, MAX_CONNECTIONS, 10);
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->state == CONNECTING) {
        if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
      } else if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(c);
      }
    }
    for (int i = 0; i < connections; i++) {
      if (conns[i].fd < 0) open_conn(&conns[i]);
    }
  }
  double client_cpu_s = cpu_seconds() - (cpu_at_measure < 0 ? 0 : cpu_at_measure);

  printf("{\"mode\":\"%s\",\"connections\":%d,\"duration_s\":%.3f,\"count\":%llu,\"ok\":%llu,\"other_replies\":%llu,"
         "\"errors\":%llu,\"connect_errors\":%llu,\"client_cpu_s\":%.3f,\"max_us\":%llu,\"overflow\":%llu,\"hist_us\":[",
         keep_open ? "keep" : "connect", connections, duration_s, (unsigned long long)count, (unsigned long long)ok_replies,
         (unsigned long long)other_replies, (unsigned long long)errors, (unsigned long long)connect_errors, client_cpu_s,
         (unsigned long long)max_us, (unsigned long long)overflow);
  int first = 1;
  for (int us = 0; us < HIST_US; us++) {
    if (!hist[us]) continue;
    printf("%s[%d,%u]", first ? "" : ",", us, hist[us]);
    first = 0;
  }
  printf("]}\n");
  return 0;
}
