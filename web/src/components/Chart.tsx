import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const COLORS: Record<string, string> = {
  succeeded: '#2e7d32',
  failed: '#c62828',
  timed_out: '#ef6c00',
  cancelled: '#6d4c41',
  rejected: '#8e24aa',
  expired: '#757575',
  running: '#1565c0',
  queued: '#00838f',
  pending_approval: '#f9a825',
  accepted: '#5c6bc0',
};

/** Runs per day, one line per status (uPlot: decision 0058). */
export function RunsPerDayChart({ rows, title, period }: { rows: { day: string; status: string; count: number }[]; title: string; period: number }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    // Every day of the period, zero where nothing ran (one point alone makes
    // uPlot pad the axis by years).
    const key = (d: string) => d.slice(0, 10);
    const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
    const daysSet = new Set<string>(rows.map((r) => key(r.day)));
    for (let i = 0; i < period; i++) daysSet.add(new Date(today - i * 86400000).toISOString().slice(0, 10));
    const days = [...daysSet].sort();
    const statuses = [...new Set(rows.map((r) => r.status))].sort();
    const xs = days.map((d) => Date.parse(d + 'T00:00:00Z') / 1000);
    const series = statuses.map((s) => days.map((d) => rows.filter((r) => key(r.day) === d && r.status === s).reduce((n, r) => n + r.count, 0)));
    const width = Math.max(280, Math.min(900, el.current.clientWidth || 600));
    const plot = new uPlot(
      {
        title,
        width,
        height: 260,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
        series: [{}, ...statuses.map((s) => ({ label: s, stroke: COLORS[s] ?? '#333', width: 2, points: { show: true } }))],
        axes: [{}, { label: 'runs' }],
      },
      [xs, ...series],
      el.current,
    );
    return () => plot.destroy();
  }, [rows, title, period]);
  return <div ref={el} className="chart" role="img" aria-label={title} />;
}
