#!/usr/bin/env node
// The peer of bench/run-core (issue 15): graphile-worker on the same
// PostgreSQL cluster, measured the way run-core measures Gangway. Prints one
// line of key=value pairs per mode.
//
//   node peer.js add      <dsn> <connections> <seconds>   addJob throughput, closed loop
//   node peer.js latency  <dsn> <rate> <seconds> <conc> [warmup]   add->start at a fixed rate (open loop),
//                                                         after [warmup] s (default 0) not counted
//   node peer.js burndown <dsn> <jobs> <conc>             start a worker on <jobs> queued jobs
//
// add->start is the task's start (Date.now()) minus the job's created_at,
// which PostgreSQL sets inside the adding transaction: the same clock and
// the same starting point as Gangway's accept->start (gw_runs.created_at).
"use strict";
const { run, makeWorkerUtils, runMigrations } = require("graphile-worker");

const [mode, dsnArg, a1, a2, a3, a4] = process.argv.slice(2);
const { Logger } = require("graphile-worker");

// A libpq keyword DSN ("host=... port=... dbname=...") as a URL for node-postgres.
function toUrl(d) {
  if (/^postgres(ql)?:\/\//.test(d)) return d;
  const kv = Object.fromEntries(d.trim().split(/\s+/).map((p) => p.split("=", 2)));
  const auth = kv.user ? encodeURIComponent(kv.user) + (kv.password ? ":" + encodeURIComponent(kv.password) : "") + "@" : "";
  return `postgres://${auth}${kv.host || "localhost"}:${kv.port || 5432}/${kv.dbname || "postgres"}`;
}
const dsn = toUrl(dsnArg || "");
const logger = new Logger(() => () => {}); // the bench prints its own lines

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : "nan");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function add(connections, seconds) {
  await runMigrations({ connectionString: dsn, logger });
  const utils = await makeWorkerUtils({ connectionString: dsn, logger, maxPoolSize: connections });
  const lat = [];
  let n = 0, errors = 0;
  const t0 = Date.now(), end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (Date.now() < end) {
      const s = process.hrtime.bigint();
      try {
        await utils.addJob("noop", { message: "bench" });
        n++;
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      } catch (e) {
        errors++;
      }
    }
  }));
  const wall = (Date.now() - t0) / 1000;
  lat.sort((x, y) => x - y);
  console.log(`mode=add connections=${connections} added=${n} errors=${errors} rate=${(n / wall).toFixed(1)} ` +
    `p50_ms=${fmt(pct(lat, 50))} p99_ms=${fmt(pct(lat, 99))}`);
  await utils.release();
}

async function latency(rate, seconds, concurrency, warmup) {
  await runMigrations({ connectionString: dsn, logger });
  const lat = [];
  let started = 0;
  // The jobs of the first `warmup` seconds run but are not counted, as
  // gangway-loadgen --warmup does for Gangway (cold connections and plans).
  const warm = Math.round(rate * warmup);
  const total = warm + Math.round(rate * seconds);
  let done;
  const all = new Promise((r) => (done = r));
  const runner = await run({
    connectionString: dsn, concurrency, logger, noHandleSignals: true, pollInterval: 2000,
    taskList: {
      noop: async (payload, helpers) => {
        if (payload.i >= warm) lat.push(Date.now() - new Date(helpers.job.created_at).getTime());
        if (++started === total) done();
      },
    },
  });
  const utils = await makeWorkerUtils({ connectionString: dsn, logger, maxPoolSize: 64 });
  await sleep(500); // the worker's LISTEN is up
  const t0 = Date.now();
  let errors = 0;
  const pending = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    pending.push(utils.addJob("noop", { i }).catch(() => errors++));
  }
  await Promise.all(pending);
  await Promise.race([all, sleep(300000)]);
  await runner.stop();
  await utils.release();
  lat.sort((x, y) => x - y);
  console.log(`mode=latency rate=${rate} sent=${total - warm} warmup=${warm} started=${started} errors=${errors} ` +
    `p50_ms=${fmt(pct(lat, 50))} p90_ms=${fmt(pct(lat, 90))} p99_ms=${fmt(pct(lat, 99))} ` +
    `max_ms=${fmt(lat[lat.length - 1])}`);
}

async function burndown(jobs, concurrency) {
  await runMigrations({ connectionString: dsn, logger });
  const utils = await makeWorkerUtils({ connectionString: dsn, logger });
  // Queue them in chunks of 1000 (addJobs: one statement per chunk).
  for (let i = 0; i < jobs; i += 1000) {
    const specs = [];
    for (let k = i; k < Math.min(jobs, i + 1000); k++) specs.push({ identifier: "noop", payload: { k } });
    await utils.addJobs(specs);
  }
  await utils.release();
  let n = 0, done;
  const all = new Promise((r) => (done = r));
  const t0 = Date.now();
  const runner = await run({
    connectionString: dsn, concurrency, logger, noHandleSignals: true,
    taskList: { noop: async () => { if (++n === jobs) done(); } },
  });
  await Promise.race([all, sleep(600000)]);
  const wall = (Date.now() - t0) / 1000;
  await runner.stop();
  console.log(`mode=burndown jobs=${jobs} completed=${n} concurrency=${concurrency} seconds=${wall.toFixed(2)} ` +
    `rate=${(n / wall).toFixed(1)}`);
}

(async () => {
  if (mode === "add") await add(Number(a1), Number(a2));
  else if (mode === "latency") await latency(Number(a1), Number(a2), Number(a3 || 16), Number(a4 || 0));
  else if (mode === "burndown") await burndown(Number(a1), Number(a2 || 16));
  else throw new Error("usage: peer.js add|latency|burndown <dsn> ...");
  process.exit(0);
})().catch((e) => {
  console.error("peer:", e && e.stack ? e.stack : e);
  process.exit(1);
});
