/** OpenAPI 3 document at /docs/json and Swagger UI at /docs. */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export async function registerSwagger(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'WatchTower',
        description:
          'HTTP database gateway. Each data route declares the database resources it needs; a request runs only once it holds ' +
          'a request slot and a pooled connection for each. Every response carries X-Correlation-ID and X-Process-Time.',
        version,
      },
      tags: [
        { name: 'traffic', description: 'Sample hourly TCP traffic data' },
        { name: 'health', description: 'Probes' },
        { name: 'operations', description: 'Metrics and operations' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
