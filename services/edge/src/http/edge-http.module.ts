import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  All,
  Controller,
  Get,
  HttpCode,
  Inject,
  Module,
  Req,
  Res,
  ServiceUnavailableException,
  type DynamicModule,
} from '@nestjs/common';
import { McpEndpoint } from './mcp-endpoint';

/** Injection token of the readiness probe. */
export const EDGE_READINESS = Symbol('EDGE_READINESS');

/** Resolves to a problem description, or undefined when the edge can serve. */
export type EdgeReadiness = () => Promise<string | undefined>;

/**
 * The one route that reaches tools. Every HTTP method lands in McpEndpoint.handle, which
 * authenticates before anything else, so no method can bypass authentication or the decision
 * path (http/route-coverage.spec.ts enumerates the registered routes).
 */
@Controller()
export class McpController {
  constructor(@Inject(McpEndpoint) private readonly endpoint: McpEndpoint) {}

  @All('mcp')
  async mcp(@Req() req: IncomingMessage, @Res() res: ServerResponse): Promise<void> {
    await this.endpoint.handle(req, res);
  }
}

/** Liveness and readiness for the orchestrator; they reach no tool and need no credential. */
@Controller()
export class EdgeHealthController {
  constructor(@Inject(EDGE_READINESS) private readonly ready: EdgeReadiness) {}

  @Get('healthz')
  @HttpCode(200)
  healthz(): { status: string } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async readyz(): Promise<{ status: string }> {
    const problem = await this.ready();
    if (problem !== undefined) throw new ServiceUnavailableException({ status: problem });
    return { status: 'ready' };
  }
}

/** The edge's HTTP app: /mcp plus health. The body is read by McpEndpoint itself (bounded). */
@Module({})
export class EdgeHttpModule {
  static forRoot(options: { endpoint: McpEndpoint; ready: EdgeReadiness }): DynamicModule {
    return {
      module: EdgeHttpModule,
      controllers: [McpController, EdgeHealthController],
      providers: [
        { provide: McpEndpoint, useValue: options.endpoint },
        { provide: EDGE_READINESS, useValue: options.ready },
      ],
    };
  }
}
