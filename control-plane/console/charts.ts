import { escapeHtml } from './html.ts';

export interface Bar {
  readonly label: string;
  readonly value: number;
}

/** Vertical bars of one figure per day, as SVG with a title per bar (read out by screen readers). */
export function dailyBarsSvg(bars: readonly Bar[], options: { title: string; unit: string }): string {
  const width = 640;
  const height = 160;
  const bottom = height - 20;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const step = width / Math.max(1, bars.length);
  const rects = bars.map((b, i) => {
    const h = (b.value / max) * (bottom - 10);
    const label = `${b.label}: ${b.value.toLocaleString('en-US')} ${options.unit}`;
    return (
      `<rect x="${(i * step + 1).toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${Math.max(1, step - 2).toFixed(1)}" ` +
      `height="${h.toFixed(1)}" fill="#1565c0"><title>${escapeHtml(label)}</title></rect>`
    );
  });
  const first = bars[0]?.label ?? '';
  const last = bars.at(-1)?.label ?? '';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" ` +
    `aria-label="${escapeHtml(options.title)}" font-family="sans-serif">${rects.join('')}` +
    `<line x1="0" y1="${bottom}" x2="${width}" y2="${bottom}" stroke="#333"/>` +
    `<text x="0" y="${height - 4}" font-size="11">${escapeHtml(first)}</text>` +
    `<text x="${width}" y="${height - 4}" font-size="11" text-anchor="end">${escapeHtml(last)}</text>` +
    `<text x="4" y="12" font-size="11">max ${escapeHtml(max.toLocaleString('en-US'))} ${escapeHtml(options.unit)}</text></svg>`
  );
}
