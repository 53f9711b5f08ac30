/**
 * A dashboard binds to its datasources by uid: a reference to a uid that provisioning does not
 * create leaves its panels empty ("datasource not found"), with nothing failing at start-up. So
 * every datasource reference anywhere in every dashboard JSON (panels, targets, rows, variables,
 * annotations) must name a provisioned datasource of the same type, and the uid that the original
 * WatchTower's dashboards use for Prometheus must be provisioned too, so they bind when imported
 * unchanged.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the YAML and JSON documents checked here are untyped by nature */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readYaml, REPO } from './helpers.js';

/** The Prometheus datasource uid in every panel of the original's three dashboards. */
const ORIGINAL_PROMETHEUS_UID = 'dedzpyqk89p8ga';

interface DatasourceRef {
  where: string;
  uid?: string;
  type?: string;
  name?: string;
}

/** Grafana's own annotations source, and references through a dashboard variable, need no provisioning. */
function builtIn(ref: DatasourceRef): boolean {
  const v = ref.uid ?? ref.name ?? '';
  return ref.type === 'grafana' || ref.type === 'datasource' || v === '-- Grafana --' || v === 'grafana' || v.startsWith('$');
}

/** Every `datasource` value in a dashboard document, at any depth, with its JSON path. */
function datasourceRefs(doc: unknown, path = ''): DatasourceRef[] {
  if (Array.isArray(doc)) return doc.flatMap((v, i) => datasourceRefs(v, `${path}[${i}]`));
  if (doc === null || typeof doc !== 'object') return [];
  const refs: DatasourceRef[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const where = `${path}.${key}`;
    if (key === 'datasource' && typeof value === 'string') refs.push({ where, name: value });
    else if (key === 'datasource' && value !== null && typeof value === 'object' && ('uid' in value || 'type' in value)) {
      const v = value as { uid?: string; type?: string };
      refs.push({ where, uid: v.uid, type: v.type });
    }
    refs.push(...datasourceRefs(value, where));
  }
  return refs;
}

function dashboardFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? dashboardFiles(join(dir, e.name)) : e.name.endsWith('.json') ? [join(dir, e.name)] : [],
  );
}

const provisioned = (readYaml('grafana/provisioning/datasources/watchtower.yaml').datasources as any[]).map((d) => ({
  uid: d.uid as string,
  name: d.name as string,
  type: d.type as string,
  url: d.url as string,
}));

/** Why `ref` would not bind, or undefined when it does. */
function unbound(ref: DatasourceRef): string | undefined {
  if (builtIn(ref)) return undefined;
  const ds = ref.uid !== undefined ? provisioned.find((d) => d.uid === ref.uid) : provisioned.find((d) => d.name === ref.name);
  if (!ds) return `${ref.where}: no provisioned datasource ${ref.uid !== undefined ? `uid ${ref.uid}` : `named ${ref.name}`}`;
  if (ref.type !== undefined && ref.type !== ds.type) return `${ref.where}: ${ds.uid} is a ${ds.type} datasource, not ${ref.type}`;
  if (ref.uid === undefined) return `${ref.where}: no uid (type ${ref.type}), so Grafana binds it to whatever its default is`;
  return undefined;
}

describe('Grafana datasource uids', () => {
  it('provisions unique uids and names', () => {
    expect(new Set(provisioned.map((d) => d.uid)).size).toBe(provisioned.length);
    expect(new Set(provisioned.map((d) => d.name)).size).toBe(provisioned.length);
    for (const d of provisioned) expect(d.uid, d.name).toMatch(/^[\w-]{1,40}$/);
  });

  it('finds references in nested panels, targets, variables and annotations', () => {
    const doc = {
      annotations: { list: [{ datasource: { type: 'grafana', uid: '-- Grafana --' } }] },
      panels: [{ type: 'row', collapsed: true, panels: [{ datasource: { type: 'prometheus', uid: 'a' }, targets: [{ datasource: { type: 'prometheus', uid: 'b' } }] }] }],
      templating: { list: [{ datasource: { type: 'loki', uid: 'c' } }, { datasource: 'Old by name' }, { datasource: { uid: '${ds}' } }] },
    };
    const refs = datasourceRefs(doc);
    expect(refs.map((r) => r.uid ?? r.name)).toEqual(['-- Grafana --', 'a', 'b', 'c', 'Old by name', '${ds}']);
    expect(refs.filter((r) => !builtIn(r)).map((r) => r.where)).toEqual([
      '.panels[0].panels[0].datasource',
      '.panels[0].panels[0].targets[0].datasource',
      '.templating.list[0].datasource',
      '.templating.list[1].datasource',
    ]);
    expect(unbound({ where: 'x', uid: 'wt-prometheus', type: 'loki' })).toMatch(/not loki/);
    expect(unbound({ where: 'x', uid: 'nope', type: 'prometheus' })).toMatch(/no provisioned datasource uid nope/);
  });

  const files = dashboardFiles(join(REPO, 'grafana/dashboards'));
  it('has dashboards to check', () => expect(files.length).toBeGreaterThan(0));

  it.each(files.map((f) => [relative(REPO, f), f]))('%s: every datasource it references is provisioned, with its type', (_name, file) => {
    const refs = datasourceRefs(JSON.parse(readFileSync(file, 'utf8')));
    expect(refs.filter((r) => !builtIn(r)).length).toBeGreaterThan(0);
    expect(refs.map(unbound).filter(Boolean)).toEqual([]);
  });

  it("provisions the original's Prometheus uid, pointing at the same Prometheus as ours", () => {
    const original = provisioned.find((d) => d.uid === ORIGINAL_PROMETHEUS_UID);
    expect(original, `no datasource with uid ${ORIGINAL_PROMETHEUS_UID}`).toBeDefined();
    expect(original!.type).toBe('prometheus');
    expect(original!.url).toBe(provisioned.find((d) => d.uid === 'wt-prometheus')!.url);
    expect(unbound({ where: 'original', uid: ORIGINAL_PROMETHEUS_UID, type: 'prometheus' })).toBeUndefined();
  });
});
