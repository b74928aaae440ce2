import { Link } from 'react-router';
import { get, qs, type Page, type Run } from '../api';
import { Countdown, ErrorBox, Json, Loading, useLoad } from '../components/common';
import { Decisions, DecisionBox, PlanFindings, PlanSummary } from '../components/RunBits';
import { useSession } from '../session';
import { redactInputs } from '../util';

function ApprovalCard({ run, onDecided }: { run: Run; onDecided: () => void }) {
  const a = run.approval;
  return (
    <li className="card approval-card" data-run={run.id}>
      <h3>
        <Link to={'/runs/' + run.id}>{run.action.id}</Link>
      </h3>
      <dl className="facts">
        <dt>Requested by</dt>
        <dd>
          {run.requested_by.subject}
          {run.requested_by.teams?.length ? ' (' + run.requested_by.teams.join(', ') + ')' : ''}
        </dd>
        <dt>Still needed</dt>
        <dd data-testid="remaining">
          {a?.remaining ?? '?'} of {a?.required ?? '?'} approval(s)
          {a?.from_teams?.length ? ' from ' + a.from_teams.join(', ') : ''}
          {a?.from_roles?.length ? ' (roles ' + a.from_roles.join(', ') + ')' : ''}
        </dd>
        <dt>Time left</dt>
        <dd>
          <Countdown at={a?.expires_at} />
        </dd>
        {run.justification && (
          <>
            <dt>Justification</dt>
            <dd>{run.justification}</dd>
          </>
        )}
      </dl>
      <details>
        <summary>Inputs</summary>
        <Json value={redactInputs(run)} />
      </details>
      <PlanSummary run={run} />
      <PlanFindings run={run} />
      <Decisions run={run} />
      <DecisionBox run={run} onDecided={onDecided} />
    </li>
  );
}

export default function ApprovalsPage() {
  const { me } = useSession();
  const inbox = useLoad((s) => get<Page<Run>>('/v1/approvals', s), []);
  const mine = useLoad((s) => get<Page<Run>>('/v1/runs' + qs({ status: 'pending_approval', limit: 100 }), s), []);
  const reload = () => {
    inbox.reload();
    mine.reload();
  };
  const inboxIds = new Set((inbox.data?.items ?? []).map((r) => r.id));
  const own = (mine.data?.items ?? []).filter((r) => r.requested_by.subject === me?.subject && !inboxIds.has(r.id));
  return (
    <section className="approvals">
      <h1>Approvals</h1>
      <section aria-labelledby="inbox">
        <h2 id="inbox">Waiting for you</h2>
        <ErrorBox error={inbox.error} />
        {inbox.loading && !inbox.data ? <Loading /> : null}
        {inbox.data && inbox.data.items.length === 0 && <p>Nothing waits for your decision.</p>}
        <ul className="cards">
          {(inbox.data?.items ?? []).map((r) => (
            <ApprovalCard key={r.id} run={r} onDecided={reload} />
          ))}
        </ul>
      </section>
      <section aria-labelledby="yours">
        <h2 id="yours">Your requests waiting for others</h2>
        <ErrorBox error={mine.error} />
        {mine.data && own.length === 0 && <p>None.</p>}
        <ul className="cards">
          {own.map((r) => (
            <ApprovalCard key={r.id} run={r} onDecided={reload} />
          ))}
        </ul>
      </section>
    </section>
  );
}
