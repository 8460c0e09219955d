import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ListedCapability } from '../providers/provider-registry';
import {
  JsonSchemaArgumentValidator,
  pinnedSchemaSource,
  type PinnedInputSchema,
} from './json-schema-argument-validator';

const readFileSchema = {
  type: 'object',
  properties: {
    path: { type: 'string', minLength: 1 },
    head: { type: 'integer', minimum: 1 },
    options: {
      type: 'object',
      properties: { encoding: { enum: ['utf8', 'base64'] } },
      additionalProperties: false,
    },
  },
  required: ['path'],
  additionalProperties: false,
} as const;

function validatorWith(schemas: Record<string, PinnedInputSchema>) {
  let lookups = 0;
  const v = new JsonSchemaArgumentValidator((id) => {
    lookups++;
    return schemas[id];
  });
  return { v, lookups: () => lookups };
}

describe('JsonSchemaArgumentValidator', () => {
  const { v } = validatorWith({
    'fs/read_file': { digest: 'sha256:a', inputSchema: readFileSchema },
  });

  it('accepts arguments the pinned schema accepts', () => {
    expect(v.validate('fs/read_file', { path: 'a.txt' })).toBeUndefined();
    expect(
      v.validate('fs/read_file', { path: 'a.txt', head: 3, options: { encoding: 'utf8' } }),
    ).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a missing required field', {}, 'arguments.path: is required'],
    ['a wrong type', { path: 42 }, 'arguments.path: must be string'],
    [
      'a field the schema does not know',
      { path: 'a', confirm: true },
      'arguments.confirm: is not allowed',
    ],
    [
      'a nested violation',
      { path: 'a', options: { encoding: 'utf16' } },
      'arguments.options.encoding:',
    ],
    ['a bound', { path: 'a', head: 0 }, 'arguments.head: must be >= 1'],
  ])('refuses %s, naming the field', (_l, args, message) => {
    expect(v.validate('fs/read_file', args)).toContain(message);
  });

  it('refuses an undeclared top-level argument even when the schema leaves others open; takes an explicit choice as written', () => {
    const open = validatorWith({
      'up/echo': {
        digest: 'sha256:open',
        inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
      },
      'up/free': {
        digest: 'sha256:free',
        inputSchema: {
          type: 'object',
          properties: { text: { type: 'string' } },
          additionalProperties: true,
        },
      },
      'up/bare': { digest: 'sha256:bare', inputSchema: { type: 'object' } },
    }).v;
    expect(open.validate('up/echo', { text: 'hi' })).toBeUndefined();
    expect(open.validate('up/echo', { text: 'hi', note: 'x' })).toContain(
      'arguments.note: is not allowed',
    );
    expect(open.validate('up/free', { text: 'hi', note: 'x' })).toBeUndefined();
    expect(open.validate('up/bare', { anything: 1 })).toBeUndefined();
  });

  it('never echoes the offending value (it may be a secret)', () => {
    const message = v.validate('fs/read_file', {
      path: 'a',
      options: { encoding: 'hunter2-secret' },
    });
    expect(message).toBeDefined();
    expect(message).not.toContain('hunter2');
  });

  it('leaves a capability without a pinned schema to the decision point', () => {
    expect(v.validate('web/fetch', { anything: 1 })).toBeUndefined();
  });

  it('compiles once per definition digest and bounds the cache', () => {
    const schemas: Record<string, PinnedInputSchema> = {};
    for (let i = 0; i < 5; i++) {
      schemas[`p/t${i}`] = {
        digest: `sha256:${i}`,
        inputSchema: { type: 'object', required: [`f${i}`] },
      };
    }
    const bounded = new JsonSchemaArgumentValidator((id) => schemas[id], { maxCompiled: 3 });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++)
        expect(bounded.validate(`p/t${i}`, {})).toContain(`arguments.f${i}`);
    }
    expect(bounded.size).toBe(3);
  });

  it('uses the schema of the new digest after a re-pin (no stale compiled schema)', () => {
    let current: PinnedInputSchema = {
      digest: 'sha256:1',
      inputSchema: { type: 'object', required: ['a'] },
    };
    const repinned = new JsonSchemaArgumentValidator(() => current);
    expect(repinned.validate('p/t', { a: 1 })).toBeUndefined();
    current = { digest: 'sha256:2', inputSchema: { type: 'object', required: ['b'] } };
    expect(repinned.validate('p/t', { a: 1 })).toContain('arguments.b: is required');
  });

  it('fails closed on a pinned schema it cannot compile, and on one over the size bound', () => {
    const broken = new JsonSchemaArgumentValidator(() => ({
      digest: 'sha256:x',
      inputSchema: { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } },
    }));
    expect(broken.validate('p/t', { a: 1 })).toContain('pinned input schema of p/t is unusable');
    const huge = new JsonSchemaArgumentValidator(
      () => ({
        digest: 'sha256:y',
        inputSchema: { type: 'object', description: 'x'.repeat(2000) },
      }),
      { maxSchemaBytes: 1000 },
    );
    expect(huge.validate('p/t', {})).toContain('larger than 1000 bytes');
  });

  it('reads draft-07 schemas as draft-07 and others as 2020-12 (the MCP default)', () => {
    const tuple07 = new JsonSchemaArgumentValidator(() => ({
      digest: 'sha256:07',
      inputSchema: {
        $schema: 'http://json-schema.org/draft-07/schema#',
        type: 'object',
        properties: { pair: { type: 'array', items: [{ type: 'string' }, { type: 'integer' }] } },
      },
    }));
    expect(tuple07.validate('p/t', { pair: ['a', 1] })).toBeUndefined();
    expect(tuple07.validate('p/t', { pair: ['a', 'b'] })).toContain('arguments.pair.1');
    const tuple2020 = new JsonSchemaArgumentValidator(() => ({
      digest: 'sha256:2020',
      inputSchema: {
        type: 'object',
        properties: {
          pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }] },
        },
      },
    }));
    expect(tuple2020.validate('p/t', { pair: ['a', 1] })).toBeUndefined();
    expect(tuple2020.validate('p/t', { pair: ['a', 'b'] })).toContain('arguments.pair.1');
  });

  it('checks formats as the MCP SDK does', () => {
    const url = new JsonSchemaArgumentValidator(() => ({
      digest: 'sha256:u',
      inputSchema: { type: 'object', properties: { url: { type: 'string', format: 'uri' } } },
    }));
    expect(url.validate('web/fetch', { url: 'https://example.org/' })).toBeUndefined();
    expect(url.validate('web/fetch', { url: 'not a uri' })).toContain('arguments.url');
  });
});

describe('pinnedSchemaSource', () => {
  const tool: Tool = { name: 'read_file', inputSchema: { type: 'object', required: ['path'] } };
  const listed: ListedCapability = { capabilityId: 'fs/read_file', digest: 'sha256:pin', tool };
  const source = pinnedSchemaSource((id) => (id === 'fs/read_file' ? listed : undefined));

  it('serves the listed schema while its digest equals the pin', () => {
    expect(source('fs/read_file', 'sha256:pin')).toEqual({
      digest: 'sha256:pin',
      inputSchema: tool.inputSchema,
    });
  });

  it('feeds the validator only the schema of the pinned digest', () => {
    const v = new JsonSchemaArgumentValidator(source);
    expect(v.validate('fs/read_file', {}, 'sha256:pin')).toBe('arguments.path: is required');
    // A changed definition is left to the decision point (TOOL_DEFINITION_CHANGED).
    expect(v.validate('fs/read_file', {}, 'sha256:other')).toBeUndefined();
  });

  it.each<[string, string, string | undefined]>([
    ['a changed definition', 'fs/read_file', 'sha256:other'],
    ['no pin', 'fs/read_file', undefined],
    ['a tool not listed', 'fs/write_file', 'sha256:pin'],
  ])('serves nothing for %s', (_l, id, pin) => {
    expect(source(id, pin)).toBeUndefined();
  });
});
