import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import type { BenchFigure, Benchmark } from '../bench/figure.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', 'cdk.out', '.data', '.git', 'out', 'reports']);

async function findBenchmarks(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await findBenchmarks(full)));
    else if (entry.name.endsWith('.bench.ts')) found.push(full);
  }
  return found.sort();
}

function formatTable(rows: { module: string; figure: BenchFigure }[]): string {
  const header = ['benchmark', 'figure', 'value', 'goal', 'result'];
  const body = rows.map(({ module, figure }) => [
    module,
    figure.figure,
    `${Number.isInteger(figure.value) ? figure.value : figure.value.toFixed(2)} ${figure.unit}`,
    figure.goal ?? '',
    figure.pass === undefined ? '' : figure.pass ? 'pass' : 'MISS',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** Figures of an earlier results file for modules other than `ran`, each with the time it was measured. */
async function previousFigures(file: string, ran: Set<string>): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return [];
  const previous = JSON.parse(text) as { measuredAt?: string; figures?: Record<string, unknown>[] };
  return (previous.figures ?? [])
    .filter((f) => !ran.has(String(f.module)))
    .map((f) => ({ measuredAt: previous.measuredAt, ...f }));
}

const program = new Command('bench')
  .description('Runs every *.bench.ts, prints a table and writes bench/results.json')
  .option('--only <text>', 'run only benchmarks whose path contains this text')
  .option('--out <file>', 'where to write the JSON results', path.join(ROOT, 'bench', 'results.json'))
  .action(async (options: { only?: string; out: string }) => {
    const files = (await findBenchmarks(ROOT)).filter((f) => !options.only || f.includes(options.only));
    if (files.length === 0) {
      console.error(`no benchmark matches '${options.only ?? ''}'`);
      process.exit(2);
    }
    const rows: { module: string; figure: BenchFigure }[] = [];
    for (const file of files) {
      const module = path.relative(ROOT, file);
      console.error(`running ${module} ...`);
      const run = (await import(pathToFileURL(file).href)).default as Benchmark;
      for (const figure of await run()) rows.push({ module, figure });
    }
    console.log(formatTable(rows));
    await mkdir(path.dirname(options.out), { recursive: true });
    const measuredAt = new Date().toISOString();
    // With --only, the figures of the benchmarks not run now stay as they were measured.
    const ran = new Set(rows.map((r) => r.module));
    const kept = options.only ? await previousFigures(options.out, ran) : [];
    const results = {
      measuredAt,
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      figures: [...kept, ...rows.map(({ module, figure }) => ({ module, measuredAt, ...figure }))],
    };
    await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
    console.error(`wrote ${path.relative(process.cwd(), options.out)}`);
    if (rows.some((r) => r.figure.pass === false)) process.exitCode = 1;
  });

await program.parseAsync();
