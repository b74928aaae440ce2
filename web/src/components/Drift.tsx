import { Link } from 'react-router';
import type { Drift, DriftStatus } from '../api';
import { formatTime } from '../util';

export const DRIFT_LABEL: Record<DriftStatus, string> = {
  in_sync: 'in sync',
  drifted: 'drifted',
  check_failed: 'check failed',
};

/** One line: +add ~change −destroy of a drifted resource's plan. */
export function driftCounts(d: Drift): string {
  const s = d.summary ?? {};
  return `+${s.add ?? 0} ~${s.change ?? 0} −${s.destroy ?? 0}`;
}

/** The last drift check of a resource (docs/drift.md): a badge, and with
 *  `detail` the summary (what would change, or why the check failed). */
export function DriftInfo({ drift, detail = false }: { drift?: Drift | null; detail?: boolean }) {
  if (!drift) return <span className="muted">not checked</span>;
  const s = drift.summary ?? {};
  return (
    <span className="drift" data-drift={drift.status}>
      <span className={'badge drift-' + drift.status}>{DRIFT_LABEL[drift.status] ?? drift.status}</span>
      {drift.status === 'drifted' && <span> {driftCounts(drift)}</span>}
      {drift.status === 'check_failed' && s.reason ? <span> ({String(s.reason)})</span> : null}
      {drift.checked_at && <span className="muted"> · checked {formatTime(drift.checked_at)}</span>}
      {detail && (
        <>
          {drift.next_at && <span className="muted"> · next {formatTime(drift.next_at)}</span>}
          {drift.run && (
            <>
              {' '}
              · <Link to={'/runs/' + drift.run}>check run</Link>
            </>
          )}
          {drift.status === 'drifted' && (s.resources?.length ?? 0) > 0 && (
            <ul className="drift-resources" aria-label="What differs">
              {s.resources!.map((r) => (
                <li key={r.address}>
                  <code>{r.address}</code> {r.actions?.length ? <span className="muted">({r.actions.join(', ')})</span> : null}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </span>
  );
}
