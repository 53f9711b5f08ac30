/**
 * The Kubernetes base (deploy/kubernetes/), rendered offline by `kubectl kustomize` as a user
 * would apply it: every object validates against the Kubernetes OpenAPI schemas (kubernetes-models;
 * the PodMonitor against the Prometheus Operator's CRD schema), and what the manifests say about
 * the gateway holds for the gateway: probes on its real health routes, the port it listens on, a
 * grace period longer than the preStop pause plus shutdown_timeout, the shipped config and endpoint
 * files in the ConfigMaps, passwords through `<rid>__db_password_FILE` from the Secret, and a new
 * ConfigMap name (so a rollout) when the config changes.
 *
 * The schemas check types, formats, enums and required fields; like any OpenAPI document of
 * Kubernetes they allow unknown fields (the API server refuses those), so the checks below read
 * the fields they rely on by name and fail when one is missing or misspelt.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import Fastify from 'fastify';
import { afterAll, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { buildSettings, type Settings } from '../../src/config/index.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { healthRoutes } from '../../src/routes/health.js';
import { describeWith, REPO, run } from '../stack/helpers.js';

const BASE = 'deploy/kubernetes';

/** The fields of the rendered objects these checks read; everything else stays unknown. */
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface Probe { httpGet?: { path?: string; port?: string | number } }
interface Container {
  name: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] }; sleep?: { seconds: number } } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Volume { name: string; configMap?: { name: string }; secret?: { secretName: string } }
interface PodSpec { containers: Container[]; volumes?: Volume[]; terminationGracePeriodSeconds?: number }
interface DeploymentSpec { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }

/** `kubectl kustomize <dir>`: the objects, in the order rendered. */
function render(dir: string): K8sObject[] {
  const r = run('kubectl', ['kustomize', dir], { timeout: 60_000 });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.out}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
}

/** The kubernetes-models class for an apiVersion and kind (core, apps, ... and monitoring.coreos.com). */
async function modelOf(apiVersion: string, kind: string): Promise<new (data: unknown) => { validate(): void }> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const pkg = group === 'monitoring.coreos.com' ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models';
  const mod = (await import(`${pkg}/${group ? `${group}/` : ''}${version}/${kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  if (!mod[kind]) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return mod[kind];
}

/** The ENV of the image's last stage (the runtime): what the container starts with. */
function imageEnv(): Record<string, string> {
  const text = readFileSync(join(REPO, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const line of runtime.split('\n')) {
    if (!line.startsWith('ENV ')) continue;
    for (const m of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[m[1]] = m[2];
  }
  return env;
}

/** Secret data values are base64. */
const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
const byKind = (objs: K8sObject[], kind: string): K8sObject[] => objs.filter((o) => o.kind === kind);
const one = (objs: K8sObject[], kind: string): K8sObject => {
  const list = byKind(objs, kind);
  expect(list.map((o) => o.metadata.name), `one ${kind}`).toHaveLength(1);
  return list[0];
};
const isSubset = (sub: Record<string, string>, of: Record<string, string>) => Object.entries(sub).every(([k, v]) => of[k] === v);

describeWith('Kubernetes base (kubectl kustomize deploy/kubernetes)', ['kubectl'], () => {
  const objects = render(BASE);
  const deployment = one(objects, 'Deployment');
  const spec = deployment.spec as unknown as DeploymentSpec;
  const pod = spec.template.spec;
  const container = pod.containers.find((c) => c.name === 'watchtower')!;
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  const mounts = container.volumeMounts ?? [];
  const containerEnv = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
  const configMaps = new Map(byKind(objects, 'ConfigMap').map((c) => [c.metadata.name, c]));
  const secrets = new Map(byKind(objects, 'Secret').map((s) => [s.metadata.name, s]));
  const work = mkdtempSync(join(tmpdir(), 'wt-k8s-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** The mount holding `path`, and the key below it (`<mountPath>/<key>`). */
  function mountOf(path: string): { volume: Volume; key: string } {
    const m = mounts.find((x) => dirname(path) === x.mountPath);
    expect(m, `a volume mounted at ${dirname(path)} (for ${path})`).toBeDefined();
    return { volume: volumes.get(m!.name)!, key: posix.basename(path) };
  }

  /** The config file the pod reads (WT_CONFIG) as it is in its ConfigMap. */
  function podConfigText(): string {
    expect(containerEnv.WT_CONFIG, 'env WT_CONFIG').toBeTruthy();
    const { volume, key } = mountOf(containerEnv.WT_CONFIG);
    const cm = configMaps.get(volume.configMap?.name ?? '');
    expect(cm?.data?.[key], `${key} in the ConfigMap mounted for WT_CONFIG`).toBeDefined();
    return cm!.data![key];
  }

  /**
   * Settings as the gateway in the pod builds them, with the real loader: the ConfigMap's file,
   * the image's and the container's environment, and each `*_FILE` password file replaced by a
   * local copy of the Secret key it names in the pod.
   */
  function podSettings(): Settings {
    const env: NodeJS.ProcessEnv = { ...imageEnv(), ...containerEnv };
    for (const [name, path] of Object.entries(containerEnv)) {
      if (!name.endsWith('__db_password_FILE')) continue;
      const { volume, key } = mountOf(path);
      const secret = secrets.get(volume.secret?.secretName ?? '');
      expect(secret?.data?.[key], `${name}: key ${key} of the Secret mounted at ${dirname(path)}`).toBeDefined();
      const local = join(work, `${name}.txt`);
      writeFileSync(local, decode(secret!.data![key]));
      env[name] = local;
    }
    return buildSettings(parseYaml(podConfigText()) as Record<string, unknown>, {}, { mainFile: containerEnv.WT_CONFIG, env });
  }

  it('renders the Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler, PodMonitor, two ConfigMaps and a Secret', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(
      ['ConfigMap', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'PodMonitor', 'Secret', 'Service'],
    );
    expect(one(objects, 'HorizontalPodAutoscaler').apiVersion).toBe('autoscaling/v2');
    expect(one(objects, 'PodMonitor').apiVersion).toBe('monitoring.coreos.com/v1');
    expect(one(objects, 'PodDisruptionBudget').apiVersion).toBe('policy/v1');
  });

  it('every object validates against its OpenAPI (or CRD) schema', async () => {
    const problems: string[] = [];
    for (const o of objects) {
      const Model = await modelOf(o.apiVersion, o.kind);
      try {
        new Model(o).validate();
      } catch (err) {
        problems.push(`${o.kind} ${o.metadata.name}: ${(err as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the container port is the port the gateway listens on (config, image and container environment)', () => {
    const settings = podSettings();
    const http = container.ports?.find((p) => p.name === 'http');
    expect(http?.containerPort, 'containerPort of the port named http').toBe(settings.port);
    const service = one(objects, 'Service').spec as { ports: { targetPort: string | number }[] };
    for (const p of service.ports) expect([http?.name, http?.containerPort], 'Service targetPort').toContain(p.targetPort);
  });

  it("probes ask the gateway's real health routes on its port: liveness and start-up /health/live, readiness /health/ready", async () => {
    const probes = { startupProbe: '/health/live', livenessProbe: '/health/live', readinessProbe: '/health/ready' } as const;
    const app = Fastify();
    healthRoutes(app, { readiness: () => ({ ready: true, unavailable: [] }), shuttingDown: () => false });
    try {
      for (const [probe, route] of Object.entries(probes)) {
        const get = container[probe as keyof typeof probes]?.httpGet;
        expect(get, `${probe}.httpGet`).toBeDefined();
        expect(get!.path, probe).toBe(route);
        expect(container.ports?.some((p) => p.name === get!.port || p.containerPort === get!.port), `${probe} port ${get!.port}`).toBe(true);
        expect((await app.inject({ url: get!.path })).statusCode, `GET ${get!.path}`).toBe(200);
      }
    } finally {
      await app.close();
    }
  });

  it('terminationGracePeriodSeconds covers the preStop pause, shutdown_timeout and the 5 s for closing what still runs', () => {
    const settings = podSettings();
    const preStop = container.lifecycle?.preStop;
    const command = preStop?.exec?.command ?? [];
    const pause = preStop?.sleep?.seconds ?? (command[0] === 'sleep' ? Number(command[1]) : NaN);
    expect(pause, 'preStop: exec sleep N or sleep.seconds').toBeGreaterThan(0);
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    expect(grace, `grace ${grace} s > preStop ${pause} s + shutdown_timeout ${settings.shutdown_timeout} s + 5 s`).toBeGreaterThan(
      pause + settings.shutdown_timeout + 5,
    );
  });

  it('the ConfigMaps hold the shipped files: the config of deploy/kubernetes and the sample endpoint files of config/endpoints', () => {
    podSettings(); // the config loads with the real loader
    expect(podConfigText()).toBe(readFileSync(join(REPO, BASE, 'watchtower.yaml'), 'utf8'));
    const endpointsCm = [...configMaps.values()].find((c) => c.metadata.name.startsWith('watchtower-endpoints'));
    expect(endpointsCm, 'the endpoints ConfigMap').toBeDefined();
    const files = Object.keys(endpointsCm!.data ?? {});
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(endpointsCm!.data![f], f).toBe(readFileSync(join(REPO, 'config/endpoints', f), 'utf8'));
  });

  it('the endpoint files are mounted where the config looks for them, and serve only enabled resources', () => {
    const settings = podSettings();
    expect(settings.endpoints.length).toBeGreaterThan(0);
    const local = join(work, 'endpoints');
    mkdirSync(local, { recursive: true });
    const localPatterns = settings.endpoints.map((pattern) => {
      const { volume, key } = mountOf(pattern);
      const cm = configMaps.get(volume.configMap?.name ?? '');
      expect(cm, `a ConfigMap mounted at ${dirname(pattern)}`).toBeDefined();
      for (const [f, text] of Object.entries(cm!.data ?? {})) writeFileSync(join(local, f), text);
      return join(local, key);
    });
    const endpoints = loadEndpoints({ ...settings, endpoints: localPatterns });
    expect(endpoints.length).toBeGreaterThan(0);
    const enabled = new Set(settings.resource_ids);
    for (const ep of endpoints) for (const rid of ep.resources) expect(enabled.has(rid), `${ep.method} ${ep.path} uses ${rid}`).toBe(true);
  });

  it('every enabled database with a password reads it from the Secret through <rid>__db_password_FILE, none from a plain variable', () => {
    const settings = podSettings();
    for (const rid of settings.resource_ids) {
      if (settings.secure[rid].db_type === 'sqlite') continue;
      expect(containerEnv[`${rid}__db_password_FILE`], `env ${rid}__db_password_FILE`).toBeTruthy();
      expect(settings.secure[rid].db_password, `${rid} password read from the Secret`).not.toBe('');
    }
    expect(Object.keys(containerEnv).filter((n) => n.endsWith('__db_password'))).toEqual([]);
  });

  it('Service, PodDisruptionBudget and PodMonitor select the pods; the HPA scales the Deployment; the scrape job is "watchtower"', () => {
    const labels = spec.template.metadata.labels;
    expect(isSubset(spec.selector.matchLabels, labels), 'Deployment selector').toBe(true);
    expect(isSubset((one(objects, 'Service').spec as { selector: Record<string, string> }).selector, labels), 'Service selector').toBe(true);
    expect(isSubset((one(objects, 'PodDisruptionBudget').spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, labels), 'PDB selector').toBe(true);
    const hpa = one(objects, 'HorizontalPodAutoscaler').spec as { scaleTargetRef: { kind: string; name: string }; minReplicas: number };
    expect(hpa.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.minReplicas, 'at least two replicas, so one may be disrupted').toBeGreaterThanOrEqual(2);
    expect((deployment.spec as { replicas?: number }).replicas, 'replicas left to the HPA').toBeUndefined();
    const pm = one(objects, 'PodMonitor').spec as { jobLabel: string; selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] };
    expect(isSubset(pm.selector.matchLabels, labels), 'PodMonitor selector').toBe(true);
    // The rules name the job: WatchtowerDown is up{job="watchtower"} == 0.
    const alerts = readFileSync(join(REPO, 'prometheus/rules/alerts.yml'), 'utf8');
    const job = /up\{job="([^"]+)"\}/.exec(alerts)?.[1];
    expect(labels[pm.jobLabel], `pod label ${pm.jobLabel} (the job)`).toBe(job);
    for (const ep of pm.podMetricsEndpoints) {
      expect(ep.path).toBe('/metrics');
      expect(container.ports?.some((p) => p.name === ep.port), `PodMonitor port ${ep.port}`).toBe(true);
    }
  });

  it('a changed config file renders a ConfigMap of another name, and the pod template follows it: a rollout', () => {
    const copy = join(work, 'base');
    cpSync(join(REPO, BASE), copy, { recursive: true });
    const configFile = join(copy, 'watchtower.yaml');
    writeFileSync(configFile, readFileSync(configFile, 'utf8').replace(/^log_level: \w+$/m, 'log_level: DEBUG'));
    const changed = render(copy);
    const refs = (objs: K8sObject[]) => {
      const d = one(objs, 'Deployment').spec as unknown as DeploymentSpec;
      return (d.template.spec.volumes ?? []).map((v) => v.configMap?.name ?? v.secret?.secretName).filter(Boolean);
    };
    const configName = (objs: K8sObject[]) => byKind(objs, 'ConfigMap').find((c) => 'watchtower.yaml' in (c.data ?? {}))!.metadata.name;
    expect(configName(changed)).not.toBe(configName(objects));
    expect(refs(objects)).toContain(configName(objects));
    expect(refs(changed)).toContain(configName(changed));
    expect(refs(changed)).not.toContain(configName(objects));
  });
});
