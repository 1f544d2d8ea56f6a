/** HTML that is already safe to embed: produced by `html` or by code that escapes its own text. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Value = SafeHtml | string | number | boolean | null | undefined | readonly Value[];

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/**
 * Template tag that escapes every interpolated value unless it is SafeHtml; templates are plain typed
 * functions, so a page that reads a missing field fails the type check instead of rendering blank.
 */
export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Marks markup produced by trusted code (the cost report's SVG, which escapes its own labels). */
export function trusted(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

export interface Layout {
  readonly title: string;
  readonly csrfToken: string;
  /** Navigation links; the current one is marked with aria-current. */
  readonly nav: readonly { readonly href: string; readonly label: string }[];
  readonly current: string;
  /** Who is signed in, e.g. `alice@example.com (viewer)`. */
  readonly signedInAs: string | null;
  readonly signOutPath: string | null;
  readonly assetsPath: string;
  /** How often live regions are refreshed. */
  readonly pollMs: number;
}

/** The page shell: no inline script or style, so the Content-Security-Policy can forbid both. */
export function page(layout: Layout, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${layout.csrfToken}">
<title>${layout.title}</title>
<link rel="stylesheet" href="${layout.assetsPath}/app.css">
<script src="${layout.assetsPath}/app.js" defer></script>
</head><body data-poll="${layout.pollMs}">
<a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="main"><ul>${layout.nav.map(
    (n) =>
      html`<li><a href="${n.href}"${n.href === layout.current ? trusted(' aria-current="page"') : ''}>${n.label}</a></li>`,
  )}</ul></nav>
${
  layout.signedInAs === null
    ? ''
    : html`<form class="signout" method="post" action="${layout.signOutPath ?? ''}" data-api="POST ${layout.signOutPath ?? ''}" data-then="reload"><span>${layout.signedInAs}</span> <button type="submit">Sign out</button></form>`
}
</header>
<main id="main"><h1>${layout.title}</h1>
<p id="status-message" role="status" aria-live="polite"></p>
${body}</main></body></html>`.value;
}
