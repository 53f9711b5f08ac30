/**
 * docker-compose files, Grafana provisioning and dashboards, Loki, OpenObserve and Fluent Bit
 * configuration: syntax (docker-compose config, YAML/JSON parsing, yamllint) and the facts the
 * running stack depends on (pinned images, logging driver options, datasource uids, panel
 * counts, retention, parser names, ...).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the YAML and JSON documents checked here are untyped by nature */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { describeWith, readYaml, REPO, run } from './helpers.js';

const COMPOSE_FILES = ['docker-compose.yml', 'docker-compose-journald.yml'];
const compose = (f: string) => readYaml<{ services: Record<string, any>; volumes: Record<string, unknown> }>(f);

describeWith('docker-compose files (docker-compose config)', ['docker-compose'], () => {
  for (const f of COMPOSE_FILES) {
    it(`docker-compose -f ${f} config -q succeeds on a fresh checkout (defaults) and with .env.example`, () => {
      // An empty --env-file stands for "no .env" even where a developer has one.
      const dir = mkdtempSync(join(tmpdir(), 'wt-compose-'));
      try {
        writeFileSync(join(dir, 'empty.env'), '');
        const empty = run('docker-compose', ['--env-file', join(dir, 'empty.env'), '-f', f, 'config', '-q']);
        expect(empty.status, empty.out).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const withExample = run('docker-compose', ['--env-file', '.env.example', '-f', f, 'config', '-q']);
      expect(withExample.status, withExample.out).toBe(0);
    });
  }

  it('interpolates .env values into the services', () => {
    const r = run('docker-compose', ['--env-file', '.env.example', '-f', 'docker-compose.yml', 'config']);
    expect(r.status, r.out).toBe(0);
    const cfg = parseYaml(r.stdout);
    expect(cfg.services.watchtower.environment.pg_traffic__db_password).toBe('change-me-pg');
    expect(cfg.services.openobserve.environment.ZO_ROOT_USER_EMAIL).toBe('root@example.com');
    expect(String(cfg.services.prometheus.ports[0].host_ip ?? cfg.services.prometheus.ports[0])).toMatch(/^127\.0\.0\.1/);
  });
});

describeWith('docker-compose content', [], () => {
  const services = ['watchtower', 'seed', 'fluent-bit', 'prometheus', 'alertmanager', 'grafana', 'loki', 'openobserve', 'mariadb', 'postgres'];

  it('has every service, each image pinned to a version', () => {
    for (const f of COMPOSE_FILES) {
      const c = compose(f);
      expect(Object.keys(c.services).sort()).toEqual([...services].sort());
      for (const [name, s] of Object.entries(c.services)) {
        if (s.build) { expect(s.image).toMatch(/^watchtower:/); continue; } // built from ./Dockerfile
        expect(s.image, `${f} ${name}`).toMatch(/^[\w./-]+:[\w.-]*\d[\w.-]*$/);
        expect(s.image, `${f} ${name}`).not.toMatch(/:latest$/);
      }
    }
    // The image runs the very Node release CI tests on (.ci/node-toolchain), a Node 24 LTS.
    const df = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
    const ciNode = /^NODE_VERSION=(24\.\d+\.\d+)$/m.exec(readFileSync(join(REPO, '.ci', 'node-toolchain'), 'utf8'))?.[1];
    expect(ciNode).toBeDefined();
    expect(df).toMatch(new RegExp(`^ARG NODE_IMAGE=node:${ciNode?.replaceAll('.', '\\.')}-bookworm-slim$`, 'm'));
  });

  it('sends the gateway logs to rsyslog (local1, rfc5424micro, watchtower/{{.ID}}) or journald (tag watchtower)', () => {
    const s = compose('docker-compose.yml').services.watchtower.logging;
    expect(s.driver).toBe('syslog');
    expect(s.options).toMatchObject({ 'syslog-facility': 'local1', 'syslog-format': 'rfc5424micro', tag: 'watchtower/{{.ID}}' });
    // the rsyslog rule listens where the driver sends
    const port = /udp:\/\/127\.0\.0\.1:(\d+)/.exec(s.options['syslog-address'])![1];
    expect(readFileSync(join(REPO, 'rsyslog/30-watchtower.conf'), 'utf8')).toMatch(new RegExp(`port="${port}"`));
    const j = compose('docker-compose-journald.yml').services;
    expect(j.watchtower.logging).toEqual({ driver: 'journald', options: { tag: 'watchtower' } });
    expect(j['fluent-bit'].command.join(' ')).toMatch(/fluent-bit-journald\.yaml/);
    expect(compose('docker-compose.yml').services['fluent-bit'].command.join(' ')).toMatch(/fluent-bit-rsyslog\.yaml/);
  });

  it('keeps the two compose files identical apart from the log transport', () => {
    const a = compose('docker-compose.yml'), b = compose('docker-compose-journald.yml');
    for (const name of Object.keys(a.services)) {
      const sa = { ...a.services[name] }, sb = { ...b.services[name] };
      if (name === 'watchtower') { delete sa.logging; delete sb.logging; }
      if (name === 'fluent-bit') { for (const k of ['command', 'volumes']) { delete sa[k]; delete sb[k]; } }
      expect(sb, name).toEqual(sa);
    }
    expect(b.volumes).toEqual(a.volumes);
  });

  it('has healthchecks and start-up conditions', () => {
    const s = compose('docker-compose.yml').services;
    for (const n of ['postgres', 'mariadb', 'prometheus', 'alertmanager', 'grafana']) expect(s[n].healthcheck?.test, n).toBeTruthy();
    expect(readFileSync(join(REPO, 'Dockerfile'), 'utf8')).toMatch(/^HEALTHCHECK .*\n.*\/health\/live/m);
    expect(s.watchtower.depends_on).toMatchObject({
      seed: { condition: 'service_completed_successfully' },
      postgres: { condition: 'service_healthy' },
      mariadb: { condition: 'service_healthy' },
    });
    expect(s.prometheus.command).toContain('--storage.tsdb.retention.time=12h');
    expect(s.watchtower.environment.OVERRIDE_CONFIG_PATH).toBe('/opt/overrides/watchtower.yaml');
    expect(s.watchtower.volumes.some((v: string) => v.endsWith(':/opt/overrides:ro'))).toBe(true);
  });

  it('commits no secret: passwords come from .env, .env.example has placeholders only', () => {
    const ex = readFileSync(join(REPO, '.env.example'), 'utf8');
    for (const m of ex.matchAll(/^(\w*PASSWORD)=(.*)$/gm)) expect(m[2], m[1]).toMatch(/change-me/i);
    for (const f of COMPOSE_FILES) {
      const text = readFileSync(join(REPO, f), 'utf8');
      for (const m of text.matchAll(/((?<!RANDOM_ROOT_)PASSWORD\w*|__db_password): (.*)$/gm)) expect(m[2], `${f} ${m[1]}`).toMatch(/^\$\{\w+:-[Cc]hange-[Mm]e[\w-]*\}$/);
    }
  });
});

describeWith('Grafana provisioning and dashboards', [], () => {
  const ds = readYaml('grafana/provisioning/datasources/watchtower.yaml').datasources as any[];
  const uids = new Set(ds.map((d) => d.uid));
  const dashboards = readdirSync(join(REPO, 'grafana/dashboards')).filter((f) => f.endsWith('.json'));
  const load = (f: string) => JSON.parse(readFileSync(join(REPO, 'grafana/dashboards', f), 'utf8'));

  it('provisions Prometheus, Loki, OpenObserve (plugin zinclabs_openobserve) and PostgreSQL, no literal secret', () => {
    const types = ds.map((d) => d.type);
    expect(types).toEqual(expect.arrayContaining(['prometheus', 'loki', 'zinclabs_openobserve', 'grafana-postgresql-datasource']));
    for (const d of ds) for (const v of Object.values(d.secureJsonData ?? {})) expect(v).toMatch(/^\$\{\w+\}$/);
    const prov = readYaml('grafana/provisioning/dashboards/watchtower.yaml').providers[0];
    expect(prov.folder).toBe('watchtower');
    const c = compose('docker-compose.yml').services.grafana;
    expect(c.volumes.some((v: string) => v.startsWith('./grafana/dashboards:') && v.includes(prov.options.path))).toBe(true);
    expect(c.environment.GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS).toBe('zinclabs_openobserve');
  });

  it('has the three reference dashboards with their panel counts, and the fourth, by client', () => {
    const count = (f: string) => {
      const p = load(f).panels as any[];
      return { rows: p.filter((x) => x.type === 'row').length, panels: p.filter((x) => x.type !== 'row').length, total: p.length };
    };
    expect(dashboards.sort()).toEqual(['watchtower-by-client.json', 'watchtower-by-endpoint.json', 'watchtower-by-resource.json', 'watchtower-main.json']);
    expect(count('watchtower-main.json').total).toBe(19);
    expect(load('watchtower-main.json').panels.find((p: any) => p.type === 'row').title).toBe('Process metrics');
    // The original's 34, the circuit breaker, SQLite reads stopped on the event loop, and the limit
    // shared by every replica (leases, fallback, wait, errors).
    expect(count('watchtower-by-resource.json')).toMatchObject({ panels: 40, rows: 6 });
    const titles = load('watchtower-by-resource.json').panels.filter((p: any) => p.type === 'row').map((p: any) => p.title);
    expect(titles).toEqual(['Requests', 'Request slots', 'Database pools and connections', 'DB connection usage durations', 'Queries', 'Limits shared by every replica']);
    const exprsOf = (f: string) => (load(f).panels as any[]).flatMap((p) => (p.targets ?? []).map((t: any) => t.expr as string)).join('\n');
    for (const m of ['wt_global_leases', 'wt_global_limit_fallback', 'wt_global_lease_wait_seconds_bucket', 'wt_global_lease_errors_total', 'wt_max_active_requests', 'wt_max_connections', 'wt_sqlite_inline_overruns_total']) {
      expect(exprsOf('watchtower-by-resource.json'), m).toContain(m);
    }
    for (const m of ['wt_cache_hits_total', 'wt_cache_misses_total', 'wt_cache_bytes', 'wt_cache_evictions_total', 'wt_cache_redis_errors_total']) {
      expect(exprsOf('watchtower-by-endpoint.json'), m).toContain(m);
    }
    // By client: rate, errors, p50/p95/p99 per caller, the top callers, auth failures, rate limits.
    const client = load('watchtower-by-client.json');
    expect(client.title).toBe('WatchTower by client');
    const exprs = (client.panels as any[]).flatMap((p) => (p.targets ?? []).map((t: any) => t.expr as string)).join('\n');
    for (const q of ['p50', 'p95', 'p99']) expect(exprs).toContain(`client_id:wt_client_request_duration_seconds:${q}_5m{client_id=~"$client_id"}`);
    for (const m of ['wt_client_requests_total', 'wt_auth_failures_total', 'wt_rate_limited_total']) expect(exprs).toContain(m);
    expect(exprs).toMatch(/topk\(10, sum by \(client_id\) \(increase\(wt_client_requests_total\[\$__range\]\)\)\)/);
  });

  it('every dashboard is well formed: uid, schemaVersion, unique ids, gridPos, datasource uid, PromQL targets, variables', () => {
    const seenUids = new Set<string>();
    for (const f of dashboards) {
      const d = load(f);
      expect(d.uid, f).toMatch(/^[\w-]{1,40}$/);
      expect(seenUids.has(d.uid)).toBe(false);
      seenUids.add(d.uid);
      expect(d.schemaVersion, f).toBeGreaterThanOrEqual(36);
      const ids = new Set<number>();
      const definedVars = new Set((d.templating.list as any[]).map((v) => v.name));
      /** Grid cells taken so far, "x,y" → panel title: Grafana would move an overlapping panel. */
      const cells = new Map<string, string>();
      for (const p of d.panels) {
        expect(ids.has(p.id), `${f} duplicate id ${p.id}`).toBe(false);
        ids.add(p.id);
        expect(p.gridPos, `${f} ${p.title}`).toMatchObject({ h: expect.any(Number), w: expect.any(Number), x: expect.any(Number), y: expect.any(Number) });
        expect(p.gridPos.x + p.gridPos.w, `${f} ${p.title} width`).toBeLessThanOrEqual(24);
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
          for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
            expect(cells.get(`${x},${y}`), `${f} ${p.title} overlaps`).toBeUndefined();
            cells.set(`${x},${y}`, p.title);
          }
        }
        if (p.type === 'row') continue;
        expect(uids.has(p.datasource?.uid), `${f} ${p.title} datasource`).toBe(true);
        expect(p.targets?.length, `${f} ${p.title} targets`).toBeGreaterThan(0);
        for (const t of p.targets) {
          expect(t.expr, `${f} ${p.title}`).toMatch(/wt_|endpoint:|resource_id:|client_id:/);
          expect(uids.has(t.datasource.uid)).toBe(true);
          for (const v of t.expr.matchAll(/\$(\w+)/g)) if (!v[1].startsWith('__')) expect(definedVars.has(v[1]), `${f} ${p.title} uses $${v[1]}`).toBe(true);
          if (/\brate\(|\bincrease\(/.test(t.expr) && !t.expr.includes(':p')) expect(t.expr, `${f} ${p.title}`).toMatch(/\$__rate_interval|\$__range/);
        }
      }
    }
    const ep = load('watchtower-by-endpoint.json').templating.list[0];
    expect(ep).toMatchObject({ name: 'endpoint', type: 'query' });
    expect(ep.query.query).toBe('label_values(wt_request_duration_seconds_count, endpoint)');
    const rid = load('watchtower-by-resource.json').templating.list[0];
    expect(rid).toMatchObject({ name: 'resource_id', type: 'query' });
    expect(rid.query.query).toBe('label_values(wt_resource_requests_total, resource_id)');
    const client = load('watchtower-by-client.json').templating.list[0];
    expect(client).toMatchObject({ name: 'client_id', type: 'query', multi: true, includeAll: true, allValue: '.*' });
    expect(client.query.query).toBe('label_values(wt_client_requests_total, client_id)');
  });

  it('reads p50/p95/p99 from recording rules that exist', () => {
    const recorded = new Set((readYaml('prometheus/rules/recording.yml').groups[0].rules as any[]).map((r) => r.record));
    for (const f of dashboards) for (const p of load(f).panels) for (const t of p.targets ?? []) {
      for (const m of t.expr.matchAll(/\b((?:endpoint|resource_id|client_id):wt_\w+:\w+)/g)) expect(recorded.has(m[1]), m[1]).toBe(true);
    }
  });
});

describeWith('Loki, OpenObserve and Fluent Bit configuration', [], () => {
  it('loki: single binary, filesystem, tsdb v13, 30-day compactor retention, structured metadata', () => {
    const l = readYaml('loki/loki.yaml');
    expect(l.auth_enabled).toBe(false);
    expect(l.common.storage.filesystem).toBeTruthy();
    expect(l.schema_config.configs.at(-1)).toMatchObject({ store: 'tsdb', schema: 'v13', object_store: 'filesystem' });
    expect(l.limits_config.retention_period).toBe('720h');
    expect(l.limits_config.allow_structured_metadata).toBe(true);
    expect(l.compactor).toMatchObject({ retention_enabled: true, delete_request_store: 'filesystem' });
  });

  it('openobserve: env file with memory caps and no credentials', () => {
    const env = Object.fromEntries(readFileSync(join(REPO, 'openobserve/openobserve.env'), 'utf8').split('\n')
      .filter((l) => /^\w+=/.test(l)).map((l) => l.split(/=(.*)/s).slice(0, 2)));
    for (const k of ['ZO_MEMORY_CACHE_MAX_SIZE', 'ZO_MEMORY_CACHE_DATAFUSION_MAX_SIZE', 'ZO_MEM_TABLE_MAX_SIZE', 'ZO_DATA_DIR']) expect(env[k], k).toBeTruthy();
    expect(Object.keys(env).some((k) => /PASSWORD|ROOT_USER/.test(k))).toBe(false);
  });

  const pipelines = ['fluent-bit-rsyslog.yaml', 'fluent-bit-rsyslog-debug.yaml', 'fluent-bit-journald.yaml', 'fluent-bit-journald-debug.yaml'];
  const fb = (f: string) => readYaml(`fluent-bit/${f}`);

  it('fluent-bit: YAML pipelines include the parsers file and use only parsers it defines', () => {
    const parsers = new Set((readYaml('fluent-bit/parsers.yaml').parsers as any[]).map((p) => p.name));
    for (const f of pipelines) {
      const c = fb(f);
      expect(c.includes, f).toEqual(['parsers.yaml']);
      expect(c.service.http_server, f).toBe('on');
      for (const flt of c.pipeline.filters) {
        if (flt.name !== 'parser') continue;
        for (const p of [flt.parser].flat()) expect(parsers.has(p), `${f}: parser ${p}`).toBe(true);
      }
      const lua = c.pipeline.filters.find((x: any) => x.name === 'lua');
      expect(lua, f).toMatchObject({ script: '/fluent-bit/etc/traceback.lua', call: 'restore_traceback_newlines' });
    }
    expect(fb('fluent-bit-rsyslog.yaml').pipeline.inputs[0]).toMatchObject({ name: 'tail', path: '/var/log/watchtower/watchtower.log' });
    expect(fb('fluent-bit-journald.yaml').pipeline.inputs[0]).toMatchObject({ name: 'systemd', systemd_filter: 'CONTAINER_TAG=watchtower' });
  });

  it('fluent-bit: debug variants have the same inputs and filters, stdout output', () => {
    for (const base of ['rsyslog', 'journald']) {
      const a = fb(`fluent-bit-${base}.yaml`).pipeline, d = fb(`fluent-bit-${base}-debug.yaml`).pipeline;
      expect(d.inputs).toEqual(a.inputs);
      expect(d.filters).toEqual(a.filters);
      expect(d.outputs.map((o: any) => o.name)).toEqual(['stdout']);
    }
  });

  it('fluent-bit: ships to OpenObserve (stream watchtower_logs, basic auth from env) and Loki (labels, structured metadata)', () => {
    for (const f of ['fluent-bit-rsyslog.yaml', 'fluent-bit-journald.yaml']) {
      const outs = fb(f).pipeline.outputs;
      const http = outs.find((o: any) => o.name === 'http');
      expect(http).toMatchObject({ host: 'openobserve', port: 5080, uri: '/api/default/watchtower_logs/_json', format: 'json', http_user: '${O2_USER}', http_passwd: '${O2_PASSWORD}' });
      const loki = outs.find((o: any) => o.name === 'loki');
      expect(loki.labels.split(/,\s*/)).toEqual(['service_name=watchtower', 'tag=$tag']);
      expect(loki.structured_metadata.split(/,\s*/).map((s: string) => s.split('=')[0])).toEqual(['host', 'container_id', 'pid', 'source']);
    }
  });
});

describeWith('yamllint (relaxed) on every YAML file of the stack', ['yamllint'], () => {
  it('reports no error', () => {
    const files = ['docker-compose.yml', 'docker-compose-journald.yml', 'docker/watchtower.yaml', 'deploy/kubernetes', 'prometheus', 'alertmanager', 'grafana/provisioning', 'loki', 'fluent-bit'];
    const r = run('yamllint', ['-f', 'parsable', '-d', '{extends: relaxed, rules: {line-length: disable}}', ...files]);
    expect(r.out).not.toMatch(/\[error\]/);
    expect(r.status, r.out).toBe(0);
  });
});
