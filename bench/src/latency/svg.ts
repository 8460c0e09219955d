/** One point of a load sweep: offered rate and the latency percentiles measured at it (ms). */
export interface PlotPoint {
  readonly offered: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  /** Errors at this step (drawn as a red ring). */
  readonly errors: number;
}

/** One line family on the plot (e.g. "Decide, cache hit"). */
export interface PlotSeries {
  readonly name: string;
  readonly points: readonly PlotPoint[];
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];
const DASH: Record<'p50' | 'p95' | 'p99', string> = {
  p50: '',
  p95: ' stroke-dasharray="6 3"',
  p99: ' stroke-dasharray="2 3"',
};

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(v: number): string {
  if (v >= 1000) return `${v / 1000}k`;
  if (v >= 1) return String(Math.round(v * 100) / 100);
  return String(Number(v.toPrecision(2)));
}

/**
 * Latency percentiles (log scale) against offered load (log scale): p50 solid, p95 dashed,
 * p99 dotted, one colour per series, with the 1 ms and 10 ms lines the goals talk about.
 * Plain SVG, no dependency: it is a few lines and a legend.
 */
export function renderLatencyPlot(title: string, series: readonly PlotSeries[]): string {
  const W = 860;
  const H = 520;
  const m = { left: 70, right: 230, top: 50, bottom: 60 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = series.flatMap((s) => s.points);
  const finite = (v: number) => Number.isFinite(v) && v > 0;
  const xs = all.map((p) => p.offered).filter(finite);
  const ys = all.flatMap((p) => [p.p50, p.p95, p.p99]).filter(finite);
  const xMin = Math.min(...xs, 1e9);
  const xMax = Math.max(...xs, 1);
  const yMin = Math.min(...ys, 0.1);
  const yMax = Math.max(...ys, 20);
  const lx0 = Math.log10(xMin) - 0.05;
  const lx1 = Math.log10(Math.max(xMax, xMin * 2)) + 0.05;
  const ly0 = Math.floor(Math.log10(yMin));
  const ly1 = Math.ceil(Math.log10(yMax));
  const X = (v: number) => m.left + ((Math.log10(v) - lx0) / (lx1 - lx0)) * pw;
  const Y = (v: number) => m.top + ph - ((Math.log10(v) - ly0) / (ly1 - ly0)) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left}" y="28" font-size="15" font-weight="bold">${esc(title)}</text>`,
  );
  // Grid: decades on y, the offered rates on x.
  for (let d = ly0; d <= ly1; d++) {
    const v = 10 ** d;
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`,
      `<text x="${m.left - 8}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(
      `<line x1="${X(v)}" x2="${X(v)}" y1="${m.top}" y2="${m.top + ph}" stroke="#eee"/>`,
      `<text x="${X(v)}" y="${m.top + ph + 18}" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  for (const [v, label] of [
    [1, '1 ms'],
    [10, '10 ms (sweep limit)'],
  ] as const) {
    if (v < 10 ** ly0 || v > 10 ** ly1) continue;
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#c00" stroke-dasharray="4 4" stroke-width="1"/>`,
      `<text x="${m.left + pw - 4}" y="${Y(v) - 4}" text-anchor="end" fill="#c00">${label}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 15}" text-anchor="middle">offered load (requests/s, log scale)</text>`,
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    for (const q of ['p50', 'p95', 'p99'] as const) {
      const pts = s.points.filter((p) => finite(p[q]) && finite(p.offered));
      if (pts.length === 0) continue;
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${DASH[q]} points="${pts
          .map((p) => `${X(p.offered).toFixed(1)},${Y(p[q]).toFixed(1)}`)
          .join(' ')}"/>`,
      );
      for (const p of pts)
        out.push(
          `<circle cx="${X(p.offered).toFixed(1)}" cy="${Y(p[q]).toFixed(1)}" r="${p.errors > 0 ? 5 : 2.5}" fill="${p.errors > 0 ? 'none' : color}" stroke="${p.errors > 0 ? '#c00' : color}" stroke-width="${p.errors > 0 ? 2 : 1}"/>`,
        );
    }
    const ly = m.top + 10 + i * 22;
    out.push(
      `<line x1="${m.left + pw + 15}" x2="${m.left + pw + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${m.left + pw + 46}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  const ky = m.top + 20 + series.length * 22;
  (['p50', 'p95', 'p99'] as const).forEach((q, i) => {
    const y = ky + i * 18;
    out.push(
      `<line x1="${m.left + pw + 15}" x2="${m.left + pw + 40}" y1="${y}" y2="${y}" stroke="#333" stroke-width="2"${DASH[q]}/>`,
      `<text x="${m.left + pw + 46}" y="${y + 4}">${q}</text>`,
    );
  });
  out.push(
    `<circle cx="${m.left + pw + 27}" cy="${ky + 58}" r="5" fill="none" stroke="#c00" stroke-width="2"/>`,
    `<text x="${m.left + pw + 46}" y="${ky + 62}">step with errors</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}
