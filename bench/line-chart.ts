/** One named series of y values, one per x step. */
export interface ChartSeries {
  readonly name: string;
  readonly values: readonly number[];
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

/** A small self-contained SVG line chart (no script, no external assets), for figures over time. */
export function lineChartSvg(options: {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
}): string {
  const width = 640;
  const height = 320;
  const pad = { left: 60, right: 20, top: 40, bottom: 45 };
  const all = options.series.flatMap((s) => s.values);
  const max = Math.max(1, ...all) * 1.1;
  const steps = Math.max(1, ...options.series.map((s) => s.values.length - 1));
  const x = (i: number) => pad.left + (i / steps) * (width - pad.left - pad.right);
  const y = (v: number) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
  const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const lines = options.series.map((s, k) => {
    const colour = COLOURS[k % COLOURS.length]!;
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    return [
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points}"/>`,
      `<text x="${pad.left + 10 + k * 200}" y="${pad.top - 8}" fill="${colour}" font-size="12">${esc(s.name)}</text>`,
    ].join('');
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = (max / 1.1) * f;
    return `<text x="${pad.left - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${Math.round(v)}</text><line x1="${pad.left}" x2="${width - pad.right}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<text x="${width / 2}" y="18" font-size="14" text-anchor="middle">${esc(options.title)}</text>`,
    ...ticks,
    `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="#999"/>`,
    ...lines,
    `<text x="${width / 2}" y="${height - 10}" font-size="12" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text x="14" y="${height / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${height / 2})">${esc(options.yLabel)}</text>`,
    '</svg>',
  ].join('\n');
}
