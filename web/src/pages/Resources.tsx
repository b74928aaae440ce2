import { useEffect, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { del, get, post, qs, type DriftStatus, type Page, type Resource } from '../api';
import { Countdown, ErrorBox, Loading, StatusBadge, useLoad } from '../components/common';
import { DRIFT_LABEL, DriftInfo } from '../components/Drift';
import { useSession } from '../session';
import { follow } from '../sse';
import { canManageResource, formatSeconds, formatTime } from '../util';

const EXTEND_STEPS = [3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400];

/** How far this resource may still be extended (seconds), from its bounds. */
export function extendChoices(r: Resource, now = Date.now()): number[] {
  if (!r.expires_at) return [];
  const room = r.max_expires_at ? Math.floor((Date.parse(r.max_expires_at) - Date.parse(r.expires_at)) / 1000) : EXTEND_STEPS[EXTEND_STEPS.length - 1];
  void now;
  if (room <= 0) return [];
  const out = EXTEND_STEPS.filter((s) => s <= room);
  if (!out.includes(room) && room < 365 * 86400) out.push(room);
  return out;
}

function ResourceRow({ r, onChange, detail = false }: { r: Resource; onChange: (r: Resource) => void; detail?: boolean }) {
  const { me } = useSession();
  const choices = extendChoices(r);
  const [secs, setSecs] = useState<number>(choices[0] ?? 0);
  const [justification, setJustification] = useState('');
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState('');
  const manage = canManageResource(me, r) && r.status === 'active';
  const extend = async () => {
    setError(null);
    try {
      const body: Record<string, unknown> = { seconds: secs };
      if (justification.trim()) body.justification = justification.trim();
      const nr = await post<Resource>('/v1/resources/' + r.id + '/extend', body);
      setNote(nr.pending_extension ? 'Extension requested: it waits for approval.' : 'Extended.');
      onChange(nr);
    } catch (e) {
      setError(e);
    }
  };
  const decideExtension = async (decision: 'approve' | 'reject') => {
    setError(null);
    try {
      onChange(await post<Resource>('/v1/resources/' + r.id + '/extension/decisions', { decision }));
      setNote(decision === 'approve' ? 'Extension approved.' : 'Extension rejected.');
    } catch (e) {
      setError(e);
    }
  };
  const remove = async () => {
    setError(null);
    try {
      const nr = await del<Resource>('/v1/resources/' + r.id);
      setConfirmDelete(false);
      if (nr) onChange(nr);
      else onChange({ ...r, status: 'tearing_down' });
    } catch (e) {
      setError(e);
    }
  };
  const sid = 'ext-' + r.id;
  return (
    <li className="card" data-resource={r.id}>
      <h3>
        {r.kind} <code>{r.name}</code> <StatusBadge status={r.status} />
      </h3>
      <dl className="facts">
        <dt>Owner</dt>
        <dd>
          {r.owner.subject}
          {r.owner.teams?.length ? ' (' + r.owner.teams.join(', ') + ')' : ''}
        </dd>
        <dt>Expires</dt>
        <dd data-testid="expires" data-expires={r.expires_at}>
          <Countdown at={r.expires_at} /> <span className="muted">({formatTime(r.expires_at)})</span>
        </dd>
        {r.max_expires_at && (
          <>
            <dt>At the latest</dt>
            <dd>{formatTime(r.max_expires_at)}</dd>
          </>
        )}
        <dt>Action</dt>
        <dd>
          {r.action}
          {r.created_by_run && (
            <>
              {' '}
              · <Link to={'/runs/' + r.created_by_run}>run</Link>
            </>
          )}
        </dd>
        <dt>Drift</dt>
        <dd data-testid="drift">
          <DriftInfo drift={r.drift} detail={detail} />
        </dd>
        {r.pending_extension && (
          <>
            <dt>Extension</dt>
            <dd>
              {formatSeconds(r.pending_extension.seconds ?? 0)} requested
              {r.pending_extension.requested_by ? ' by ' + r.pending_extension.requested_by : ''}, waiting for approval
              {r.pending_extension.justification ? ': “' + r.pending_extension.justification + '”' : ''}
            </dd>
          </>
        )}
        {r.deleted_at && (
          <>
            <dt>Deleted</dt>
            <dd>{formatTime(r.deleted_at)}</dd>
          </>
        )}
      </dl>
      {r.pending_extension && r.pending_extension.requested_by !== me?.subject && r.status === 'active' && (
        <div className="actions-row" aria-label="Decide the extension">
          <button type="button" className="primary" onClick={() => void decideExtension('approve')}>
            Approve extension
          </button>
          <button type="button" className="danger" onClick={() => void decideExtension('reject')}>
            Reject extension
          </button>
        </div>
      )}
      {manage && (
        <div className="actions-row">
          {choices.length > 0 && !r.pending_extension && (
            <>
              <label htmlFor={sid}>Extend by</label>
              <select id={sid} value={secs} onChange={(e) => setSecs(Number(e.target.value))}>
                {choices.map((c) => (
                  <option key={c} value={c}>
                    {formatSeconds(c)}
                  </option>
                ))}
              </select>
              <label htmlFor={sid + '-j'} className="sr-only">
                Justification
              </label>
              <input id={sid + '-j'} placeholder="why (optional)" maxLength={1000} value={justification} onChange={(e) => setJustification(e.target.value)} />
              <button type="button" onClick={() => void extend()}>
                Extend
              </button>
            </>
          )}
          {!confirmDelete ? (
            <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>
              Delete…
            </button>
          ) : (
            <span role="alertdialog" aria-label="Confirm deletion">
              Tear it down now?{' '}
              <button type="button" className="danger" onClick={() => void remove()}>
                Yes, delete
              </button>{' '}
              <button type="button" onClick={() => setConfirmDelete(false)}>
                No
              </button>
            </span>
          )}
        </div>
      )}
      {note && <p role="status">{note}</p>}
      <ErrorBox error={error} />
    </li>
  );
}

export default function ResourcesPage() {
  const { id } = useParams();
  const [tab, setTab] = useState<'active' | 'history'>('active');
  const [params, setParams] = useSearchParams();
  const drift = (params.get('drift') ?? '') as DriftStatus | '';
  const setDrift = (v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set('drift', v);
    else p.delete('drift');
    setParams(p, { replace: true });
  };
  const list = useLoad(
    (s) => get<Page<Resource>>('/v1/resources' + qs({ status: tab === 'active' ? undefined : 'deleted', drift, limit: 200 }), s),
    [tab, drift],
  );
  const one = useLoad((s) => (id ? get<Resource>('/v1/resources/' + encodeURIComponent(id), s) : Promise.resolve(null)), [id]);
  const [items, setItems] = useState<Resource[]>([]);
  useEffect(() => {
    const all = list.data?.items ?? [];
    setItems(tab === 'active' ? all.filter((r) => r.status !== 'deleted') : all);
  }, [list.data, tab]);
  useEffect(() => {
    const f = follow({
      url: '/v1/events',
      events: ['resource'],
      onEvent: (_n, data) => {
        const r = data as Resource;
        setItems((prev) => (prev.some((x) => x.id === r.id) ? prev.map((x) => (x.id === r.id ? r : x)) : prev));
      },
    });
    return () => f.close();
  }, []);
  const replace = (nr: Resource) => setItems((prev) => prev.map((x) => (x.id === nr.id ? { ...x, ...nr } : x)));
  return (
    <section>
      <h1>Resources</h1>
      {id && (
        <section aria-labelledby="this">
          <h2 id="this">This resource</h2>
          <ErrorBox error={one.error} />
          {one.data && (
            <ul className="cards">
              <ResourceRow r={one.data} onChange={(r) => one.setData(r)} detail />
            </ul>
          )}
        </section>
      )}
      <div className="tabs" role="group" aria-label="Which resources">
        <button type="button" aria-pressed={tab === 'active'} onClick={() => setTab('active')}>
          Live
        </button>
        <button type="button" aria-pressed={tab === 'history'} onClick={() => setTab('history')}>
          Expired and deleted
        </button>
      </div>
      <div className="filters">
        <div>
          <label htmlFor="drift-filter">Drift</label>{' '}
          <select id="drift-filter" value={drift} onChange={(e) => setDrift(e.target.value)}>
            <option value="">any</option>
            {(Object.keys(DRIFT_LABEL) as DriftStatus[]).map((k) => (
              <option key={k} value={k}>
                {DRIFT_LABEL[k]}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data && items.length === 0 && <p>No resource here.</p>}
      <ul className="cards">
        {items.map((r) => (
          <ResourceRow key={r.id} r={r} onChange={replace} />
        ))}
      </ul>
    </section>
  );
}
