// A stand-in for /opt/charger-agent without node_modules: every source file of agent/ and drivers/
// transpiled one by one (TypeScript's transpileModule, no type check, about a second) to
// <root>/dist/, plus package.json. A command run from here that imports any package fails, which is
// how the relay-safe tests show it loads no dependency.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './agent-process.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

export interface InstallTree {
  /** Stands for /opt/charger-agent. */
  root: string;
  cleanup(): void;
}

export function buildInstallTree(): InstallTree {
  const root = mkdtempSync(join(tmpdir(), 'charger-opt-'));
  for (const file of [...sources(join(REPO_ROOT, 'agent')), ...sources(join(REPO_ROOT, 'drivers'))]) {
    const out = join(root, 'dist', relative(REPO_ROOT, file)).replace(/\.ts$/, '.js');
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
      fileName: file,
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, outputText);
  }
  cpSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
