import { isHandleId } from '@hcp/core';
import { invalidArgument } from '@hcp/platform';

/**
 * Size bounds on request fields. They keep a row and an audit entry small and
 * make an oversize identifier a clear INPUT_INVALID rather than a huge index key.
 */
export const FIELD_LIMITS = {
  principalIdLength: 256,
  capabilityIdLength: 193,
  providerLength: 64,
  toolLength: 128,
  labelsPerHandle: 32,
  labelKeyLength: 64,
  labelValueLength: 256,
  decisionIdLength: 128,
  reasonLength: 1024,
} as const;

// Control characters never belong in an identifier; they are how log lines and audit rows get forged.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A required, bounded, printable string with no surrounding whitespace. */
export function requireText(field: string, value: string, max: number): string {
  if (value.length === 0) throw invalidArgument(field, 'is required');
  if (value.length > max) throw invalidArgument(field, `is longer than ${max} characters`);
  if (CONTROL.test(value)) throw invalidArgument(field, 'contains a control character');
  if (value.trim() !== value) throw invalidArgument(field, 'has leading or trailing whitespace');
  return value;
}

/** A principal id as the edge authenticated it. */
export function requirePrincipalId(field: string, value: string): string {
  return requireText(field, value, FIELD_LIMITS.principalIdLength);
}

/** A handle id: the shape newHandleId mints; anything else cannot name a handle. */
export function requireHandleId(field: string, value: string): string {
  if (value.length === 0) throw invalidArgument(field, 'is required');
  if (!isHandleId(value)) throw invalidArgument(field, 'is not a handle id (hdl_ + 22 base64url)');
  return value;
}

// The MCP tool-name alphabet, as grant-store's manifest keys capabilities.
const NAME = /^[A-Za-z0-9_.-]+$/;

/** A capability id `provider/tool`. */
export function requireCapabilityId(field: string, value: string): string {
  requireText(field, value, FIELD_LIMITS.capabilityIdLength);
  const slash = value.indexOf('/');
  const provider = value.slice(0, slash);
  const tool = value.slice(slash + 1);
  if (
    slash <= 0 ||
    tool.includes('/') ||
    provider.length > FIELD_LIMITS.providerLength ||
    tool.length === 0 ||
    tool.length > FIELD_LIMITS.toolLength ||
    !NAME.test(provider) ||
    !NAME.test(tool)
  )
    throw invalidArgument(field, 'must be provider/tool (letters, digits, _ . -)');
  return value;
}

const LABEL_KEY = /^[A-Za-z0-9_.\-/]+$/;

/** Labels: bounded in count and size; keys are plain names (policy compares them exactly). */
export function requireLabels(
  field: string,
  labels: Readonly<Record<string, string>>,
): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > FIELD_LIMITS.labelsPerHandle)
    throw invalidArgument(field, `has more than ${FIELD_LIMITS.labelsPerHandle} entries`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > FIELD_LIMITS.labelKeyLength || !LABEL_KEY.test(key))
      throw invalidArgument(
        `${field}[${JSON.stringify(key.slice(0, FIELD_LIMITS.labelKeyLength))}]`,
        `key must be 1-${FIELD_LIMITS.labelKeyLength} of A-Z a-z 0-9 _ . - /`,
      );
    if (value.length > FIELD_LIMITS.labelValueLength)
      throw invalidArgument(
        `${field}[${key}]`,
        `is longer than ${FIELD_LIMITS.labelValueLength} characters`,
      );
    if (CONTROL.test(value))
      throw invalidArgument(`${field}[${key}]`, 'contains a control character');
  }
  // fromEntries defines own properties, so a `__proto__` label stays a label, not a prototype.
  return Object.fromEntries(entries);
}

/** Operator free text (ExpireNow's reason): bounded, no control characters. */
export function optionalReason(field: string, value: string): string {
  if (value.length > FIELD_LIMITS.reasonLength)
    throw invalidArgument(field, `is longer than ${FIELD_LIMITS.reasonLength} characters`);
  if (CONTROL.test(value)) throw invalidArgument(field, 'contains a control character');
  return value;
}
