/**
 * An app and its resources served in the test's own process: the pools opened and warmed before
 * it listens on a free loopback port, and closed after the app, so no request finds a pool shut.
 */
import type { FastifyInstance } from 'fastify';
import type { ResourceManager } from '../../src/resources/resource-manager.js';

/** Opens and warms the pools, then listens; resolves to the app's URL. */
export async function serveInProcess(app: FastifyInstance, resources: ResourceManager): Promise<string> {
  resources.start();
  await resources.warm();
  return app.listen({ host: '127.0.0.1', port: 0 });
}

/** Closes the app, then its pools; either may be missing when the setup failed part way. */
export async function closeInProcess(app: FastifyInstance | undefined, resources: ResourceManager | undefined): Promise<void> {
  await app?.close();
  await resources?.shutdown(1);
}
