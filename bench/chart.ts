/** A small SVG bar chart of the benchmark's medians: one group per scenario, bars scaled within the group. */
type Cell = { median: number } | null;
interface Json { results: Record<string, Record<string, Cell>>; systems: { name: string }[] }

const COLORS = ['#2e7d32', '#1565c0', '#ef6c00'];

export function renderSvg(json: Json): string {
  const names = json.systems.map((s) => s.name);
  const scenarios = Object.keys(json.results);
  const rowH = 16;
  const groupH = names.length * rowH + 18;
  const width = 760;
  const left = 230;
  const height = scenarios.length * groupH + 40;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="white"/>'];
  names.forEach((n, i) => parts.push(`<rect x="${left + i * 150}" y="8" width="10" height="10" fill="${COLORS[i]}"/>`,
    `<text x="${left + i * 150 + 14}" y="17">${esc(n)}</text>`));
  scenarios.forEach((sc, g) => {
    const y0 = 30 + g * groupH;
    parts.push(`<text x="4" y="${y0 + 12}" font-weight="bold">${esc(sc)}</text>`);
    const values = names.map((n) => json.results[sc][n]?.median ?? 0);
    const max = Math.max(...values, 1e-9);
    values.forEach((v, i) => {
      const w = Math.max(1, ((width - left - 80) * v) / max);
      const y = y0 + 16 + i * rowH - 12;
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 4}" fill="${COLORS[i]}"/>`,
        `<text x="${left + w + 4}" y="${y + 10}">${v >= 100 ? Math.round(v) : v.toFixed(2)}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}
