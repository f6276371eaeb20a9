// A horizontal bar chart of start-up medians as a self-contained SVG (no dependencies).
import type { Result } from './lib.js';

export function plotStartup(r: Result): string {
  const rows = r.rows;
  const max = Math.max(...rows.map((x) => x.p90Ms)) * 1.1;
  const W = 720, bar = 22, gap = 10, left = 210, top = 40;
  const H = top + rows.length * (bar + gap) + 30;
  const x = (ms: number) => left + (ms / max) * (W - left - 60);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">Start-up of /bin/true, median ms (bars), p10–p90 (lines) — ${esc(r.date.slice(0, 10))}</text>`,
  ];
  rows.forEach((row, i) => {
    const y = top + i * (bar + gap);
    const fill = row.name.startsWith('ctr') ? '#2b6cb0' : '#a0aec0';
    parts.push(`<text x="${left - 8}" y="${y + bar * 0.7}" text-anchor="end">${esc(row.name)}</text>`);
    parts.push(`<rect x="${left}" y="${y}" width="${x(row.medianMs) - left}" height="${bar}" fill="${fill}"/>`);
    parts.push(`<line x1="${x(row.p10Ms)}" x2="${x(row.p90Ms)}" y1="${y + bar / 2}" y2="${y + bar / 2}" stroke="black"/>`);
    parts.push(`<text x="${x(row.p90Ms) + 6}" y="${y + bar * 0.7}">${row.medianMs.toFixed(1)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
