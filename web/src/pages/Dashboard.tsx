import { useState } from 'react';
import { get, type Dashboard } from '../api';
import { ErrorBox, Loading, useLoad } from '../components/common';
import { RunsPerDayChart } from '../components/Chart';
import { formatMs, formatTime } from '../util';

export default function DashboardPage() {
  const [days, setDays] = useState(14);
  const d = useLoad((s) => get<Dashboard>('/v1/dashboard?days=' + days, s), [days]);
  const data = d.data;
  return (
    <section>
      <h1>Dashboard</h1>
      <label>
        Period{' '}
        <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
          {[7, 14, 30, 90].map((n) => (
            <option key={n} value={n}>
              last {n} days
            </option>
          ))}
        </select>
      </label>
      <ErrorBox error={d.error} />
      {d.loading && !data ? <Loading /> : null}
      {data && (
        <div className="dash" data-testid="dashboard">
          <div className="tiles">
            <div className="tile">
              <span className="big" data-testid="queue-depth">
                {data.queue?.depth ?? 0}
              </span>
              <span>queued now</span>
              <span className="muted">oldest: {formatTime(data.queue?.oldest_queued_at)}</span>
            </div>
            <div className="tile">
              <span className="big">{formatMs(data.approval_wait?.p50_ms)}</span>
              <span>approval wait p50</span>
              <span className="muted">
                p90 {formatMs(data.approval_wait?.p90_ms)} over {data.approval_wait?.count ?? 0}
              </span>
            </div>
          </div>
          <section aria-labelledby="rpd">
            <h2 id="rpd">Runs per day</h2>
            {data.runs_per_day?.length ? <RunsPerDayChart rows={data.runs_per_day} title="Runs per day by status" period={days} /> : <p>No run in the period.</p>}
          </section>
          <section aria-labelledby="dur">
            <h2 id="dur">Duration per action</h2>
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Action</th>
                  <th scope="col">p50</th>
                  <th scope="col">p90</th>
                  <th scope="col">p99</th>
                  <th scope="col">Runs</th>
                </tr>
              </thead>
              <tbody>
                {(data.duration_percentiles ?? []).map((r) => (
                  <tr key={r.action}>
                    <td>{r.action}</td>
                    <td>{formatMs(r.p50_ms)}</td>
                    <td>{formatMs(r.p90_ms)}</td>
                    <td>{formatMs(r.p99_ms)}</td>
                    <td>{r.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
          <section aria-labelledby="fail">
            <h2 id="fail">Failure rate per action</h2>
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Action</th>
                  <th scope="col">Failed</th>
                  <th scope="col">Total</th>
                  <th scope="col">Rate</th>
                </tr>
              </thead>
              <tbody>
                {(data.failure_rate ?? []).map((r) => (
                  <tr key={r.action}>
                    <td>{r.action}</td>
                    <td>{r.failed}</td>
                    <td>{r.total}</td>
                    <td>
                      <meter min={0} max={1} value={r.rate} aria-label={'failure rate of ' + r.action} /> {(r.rate * 100).toFixed(1)}%
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
          <section aria-labelledby="top">
            <h2 id="top">Top requesters</h2>
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Team</th>
                  <th scope="col">Requester</th>
                  <th scope="col">Runs</th>
                </tr>
              </thead>
              <tbody>
                {(data.top_requesters ?? []).map((r, i) => (
                  <tr key={i}>
                    <td>{r.team || '—'}</td>
                    <td>{r.subject}</td>
                    <td>{r.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        </div>
      )}
    </section>
  );
}
