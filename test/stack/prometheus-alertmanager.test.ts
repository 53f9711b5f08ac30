/**
 * Prometheus and Alertmanager configuration: promtool/amtool accept it, every alert of the
 * reference list exists with severity, summary, description and a comment on causes, and every
 * alert has a promtool unit test that passes.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the YAML and JSON documents checked here are untyped by nature */
import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { describeWith, readYaml, REPO, run } from './helpers.js';

/** The alert list of the original (reference), by group. Extra alerts are allowed. */
const REFERENCE_ALERTS: Record<string, string[]> = {
  request_alerts: ['HighPendingRequests', 'HighInProgressRequests', 'RequestSlotTimeouts', 'RequestSlotOverload',
    'HighRequestSlotAcquisitionTime', 'HighRequestRate', 'HighRequestDuration', 'HighEndpointErrorRate'],
  db_connection_pool_alerts: ['NoDatabaseConnections', 'ConnectionCreationErrors', 'ConnectionAcquireTimeouts',
    'HighConnectionAcquisitionTime', 'ConnectionPoolEmpty', 'ConnectionPoolExhausted', 'LowConnectionUtilizationSqliteTraffic',
    'HighConnectionUsageDuration'],
  db_query_alerts: ['HighQueryExecutionTime'],
  resource_alerts: ['HighCpuUsage', 'HighMemoryUsage', 'HighOpenFileDescriptors', 'HighIoReadActivity', 'StaleResourceMonitoring'],
};

interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
const alertGroups = () => readYaml<{ groups: { name: string; rules: Rule[] }[] }>('prometheus/rules/alerts.yml').groups;

describeWith('prometheus config and rules (promtool)', ['promtool'], () => {
  it('promtool check config accepts prometheus/prometheus.yml and finds both rule files', () => {
    const r = run('promtool', ['check', 'config', 'prometheus/prometheus.yml']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/2 rule files found/);
  });

  it('the documented remote_write to OpenObserve is valid once uncommented', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt-prom-'));
    try {
      const text = readFileSync(join(REPO, 'prometheus/prometheus.yml'), 'utf8').replace(/^#RW ?/gm, '');
      writeFileSync(join(dir, 'prometheus.yml'), text);
      symlinkSync(join(REPO, 'prometheus/rules'), join(dir, 'rules'));
      const cfg = parseYaml(text);
      expect(cfg.remote_write[0].url).toBe('http://openobserve:5080/api/default/prometheus/api/v1/write');
      expect(cfg.remote_write[0].basic_auth.password_file).toBeTruthy();
      const r = run('promtool', ['check', 'config', '--syntax-only', join(dir, 'prometheus.yml')]);
      expect(r.status, r.out).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('promtool check rules accepts the recording and alerting rules', () => {
    const r = run('promtool', ['check', 'rules', 'prometheus/rules/recording.yml', 'prometheus/rules/alerts.yml']);
    expect(r.status, r.out).toBe(0);
  });

  it('promtool test rules: every unit test passes', () => {
    const files = readdirSync(join(REPO, 'prometheus/tests')).filter((f) => f.endsWith('.yml')).map((f) => `prometheus/tests/${f}`);
    expect(files.length).toBeGreaterThan(0);
    const r = run('promtool', ['test', 'rules', ...files], { timeout: 60_000 });
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toMatch(/FAILED/);
  });
});

describeWith('alert rules content', [], () => {
  it('has every alert of the reference list in its group, with severity, summary and description', () => {
    const groups = alertGroups();
    for (const [group, names] of Object.entries(REFERENCE_ALERTS)) {
      const g = groups.find((x) => x.name === group);
      expect(g, `group ${group}`).toBeDefined();
      for (const n of names) {
        const rule = g!.rules.find((r) => r.alert === n);
        expect(rule, `${group}/${n}`).toBeDefined();
        expect(['critical', 'major', 'warning', 'info'], n).toContain(rule!.labels?.severity);
        expect(rule!.annotations?.summary, n).toBeTruthy();
        expect(rule!.annotations?.description, n).toBeTruthy();
      }
    }
  });

  it('computes every percentile from _bucket series aggregated by le (the original got this wrong)', () => {
    for (const g of alertGroups()) {
      for (const r of g.rules) {
        if (!r.expr.includes('histogram_quantile')) continue;
        expect(r.expr, r.alert).toMatch(/histogram_quantile\(0\.\d+,\s*sum by \(le[,)][^]*rate\(wt_\w+_bucket\[/);
      }
    }
  });

  it('precedes every alert with a comment on likely causes', () => {
    const lines = readFileSync(join(REPO, 'prometheus/rules/alerts.yml'), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!/^\s*- alert: /.test(line)) return;
      expect(lines[i - 1], `comment above ${line.trim()}`).toMatch(/^\s*#/);
    });
  });

  it('has a promtool unit test for every alert', () => {
    const tested = new Set<string>();
    for (const f of readdirSync(join(REPO, 'prometheus/tests'))) {
      const doc = readYaml<{ tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] }>(`prometheus/tests/${f}`);
      for (const t of doc.tests) for (const a of t.alert_rule_test ?? []) if (a.exp_alerts.length > 0) tested.add(a.alertname);
    }
    for (const g of alertGroups()) for (const r of g.rules) if (r.alert) expect(tested.has(r.alert), `unit test for ${r.alert}`).toBe(true);
  });
});

describeWith('alertmanager config (amtool)', ['amtool'], () => {
  it('amtool check-config accepts alertmanager/alertmanager.yml', () => {
    const r = run('amtool', ['check-config', 'alertmanager/alertmanager.yml']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });

  it('routes by severity', () => {
    const route = (labels: string[]) => run('amtool', ['config', 'routes', 'test', '--config.file=alertmanager/alertmanager.yml', ...labels]).stdout.trim();
    expect(route(['severity=critical', 'alertname=WatchtowerDown'])).toMatch(/oncall-webhook/);
    expect(route(['severity=critical', 'alertname=WatchtowerDown'])).toMatch(/team-email/);
    expect(route(['severity=major', 'alertname=ConnectionPoolExhausted'])).toBe('team-email');
    expect(route(['severity=warning', 'alertname=HighCpuUsage'])).toBe('team-email');
    expect(route(['severity=info', 'alertname=ConnectionPoolEmpty'])).toBe('blackhole');
  });

  it('NoDatabaseConnections inhibits ConnectionAcquireTimeouts of the same resource; no secret in the file', () => {
    const cfg = readYaml('alertmanager/alertmanager.yml');
    const rule = cfg.inhibit_rules.find((r: any) => r.source_matchers.some((m: string) => m.includes('NoDatabaseConnections')));
    expect(rule.equal).toEqual(['resource_id']);
    expect(rule.target_matchers.join(' ')).toMatch(/ConnectionAcquireTimeouts/);
    // Redis errors of a global limit are the fallback's cause: muted while it fires, lost leases not.
    const fallback = cfg.inhibit_rules.find((r: any) => r.source_matchers.some((m: string) => m.includes('GlobalLimitFallback')));
    expect(fallback).toMatchObject({ equal: ['resource_id'], target_matchers: ['alertname="GlobalLeaseErrors"', 'error_type="redis"'] });
    const text = readFileSync(join(REPO, 'alertmanager/alertmanager.yml'), 'utf8');
    expect(text).not.toMatch(/^\s*(smtp_auth_password|credentials|password):/m);
    expect(text).toMatch(/smtp_auth_password_file:/);
    expect(text).toMatch(/credentials_file:/);
  });
});
