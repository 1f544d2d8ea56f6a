import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Directory where the stacks fixture synthesizes each environment once per run. */
    stacksSynthDir: string;
  }
}

/** Only hands out a directory: synthesis itself is lazy, so runs without stacks tests pay nothing. */
export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(path.join(tmpdir(), 'agent-platform-synth-'));
  project.provide('stacksSynthDir', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}
