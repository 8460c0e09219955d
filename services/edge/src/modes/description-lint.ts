/**
 * The tool-description linter of the connection-layer baseline (B1). It does what the
 * description scanners deployed in front of MCP servers do today (mcp-scan-style static
 * rules, MCP gateway "tool poisoning" filters): pattern rules over the text a model reads.
 * It is written to be realistic, not to be beaten or to win: it catches the well-known
 * markers and misses paraphrase, other languages, instructions split across tools, and
 * everything that arrives later in tool OUTPUT, which is exactly what B1 is measured for.
 * Nothing here is used by the `hcp` mode (I1: descriptions are never read as policy).
 */

/** What a linter rule looks for; the names are stable (benchmark reports group by them). */
export type LintRule =
  | 'hidden_instruction_tag'
  | 'instruction_override'
  | 'concealment'
  | 'sensitive_file'
  | 'cross_tool_reference'
  | 'invisible_unicode'
  | 'control_characters'
  | 'encoded_blob'
  | 'external_url'
  | 'excessive_length';

/** `block` hides the tool and refuses calls to it in B1; `warn` is reported only. */
export type LintSeverity = 'block' | 'warn';

/** One thing the linter found, where, and a short excerpt (invisible characters shown escaped). */
export interface LintFinding {
  readonly rule: LintRule;
  readonly severity: LintSeverity;
  /** `name`, `description`, or a path into the input schema such as `inputSchema.properties.path.description`. */
  readonly location: string;
  readonly message: string;
  /** At most ~80 characters around the match. */
  readonly excerpt: string;
}

/** The parts of a tool definition the linter reads (the MCP `Tool` shape fits). */
export interface LintableTool {
  readonly name: string;
  readonly description?: string;
  readonly inputSchema?: unknown;
}

/** Knobs of the linter; the defaults are what the baseline runs with. */
export interface LintOptions {
  /**
   * Names of the tools the agent can see, agent-facing (`provider.tool`); for shadowing. Only
   * tools of OTHER providers count, as in deployed scanners' cross-server ("cross-origin")
   * rule: a server naming its own sibling tool ("deprecated: use read_text_file") is normal.
   */
  readonly otherToolNames?: Iterable<string>;
  /** A description longer than this is reported (`warn`); default 2000 characters. */
  readonly maxDescriptionLength?: number;
}

/** Bounds of the linter's own work, so a hostile definition cannot make linting slow. */
export const LINT_LIMITS = {
  /** Characters of one text that are scanned; the rest is reported as excessive length. */
  maxScannedChars: 65_536,
  /** Schema nodes visited. */
  maxSchemaNodes: 2_000,
  /** Schema nesting followed. */
  maxSchemaDepth: 16,
  /** Findings returned for one tool. */
  maxFindings: 50,
  /** Default description length reported as excessive. */
  maxDescriptionLength: 2_000,
  /** A parameter description longer than this is reported as excessive. */
  maxSchemaTextLength: 1_000,
} as const;

// Format (Cf) characters that render as nothing, bidi controls that reorder what is shown,
// Unicode tag characters (invisible ASCII copies, "ASCII smuggling") and the variation
// selector supplement (used to hide bytes after a visible character). Ordinary emoji
// presentation selectors (U+FE0E/FE0F) and ZWJ inside emoji are NOT flagged: they occur in
// honest text, and real scanners that flag them get switched off.
const INVISIBLE_RANGES: readonly (readonly [number, number])[] = [
  [0x00ad, 0x00ad], // soft hyphen
  [0x180e, 0x180e], // Mongolian vowel separator
  [0x200b, 0x200f], // zero-width space/non-joiner/joiner, LRM, RLM
  [0x202a, 0x202e], // bidi embeddings and overrides
  [0x2060, 0x2064], // word joiner, invisible operators
  [0x2066, 0x2069], // bidi isolates
  [0xfeff, 0xfeff], // zero-width no-break space (BOM)
  [0xe0000, 0xe007f], // tag characters
  [0xe0100, 0xe01ef], // variation selectors supplement
];
const ZWJ = 0x200d;

function isInvisible(cp: number): boolean {
  return INVISIBLE_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi);
}

// C0 controls other than tab/newline/carriage return, DEL and C1; ESC starts ANSI sequences
// that can hide text in a terminal that shows the description.
function isControl(cp: number): boolean {
  return (cp < 0x20 && cp !== 0x09 && cp !== 0x0a && cp !== 0x0d) || (cp >= 0x7f && cp <= 0x9f);
}

/** Extended_Pictographic on both sides of a ZWJ is how emoji sequences are written. */
const PICTOGRAPHIC = /\p{Extended_Pictographic}/u;

/** Each code point with its UTF-16 index; one linear pass (checked code points, no regex classes). */
function* codePoints(text: string): Generator<{ cp: number; ch: string; index: number }> {
  let index = 0;
  for (const ch of text) {
    yield { cp: ch.codePointAt(0)!, ch, index };
    index += ch.length;
  }
}

interface PhraseRule {
  readonly rule: LintRule;
  readonly severity: LintSeverity;
  readonly message: string;
  readonly patterns: readonly RegExp[];
}

// Phrase rules run on normalised text: NFKC (full-width and compatibility forms fold to
// ASCII), invisible characters removed (so "ig\u200Bnore" still reads "ignore"), whitespace
// collapsed, lower case. Every pattern is linear (bounded gaps, no nested quantifiers).
const PHRASE_RULES: readonly PhraseRule[] = [
  {
    rule: 'hidden_instruction_tag',
    severity: 'block',
    message: 'markup that addresses the model rather than describing the tool',
    patterns: [
      /<\s*\/?\s*(important|system|instructions?|secret|hidden|admin|assistant|system[-_ ]?prompt|context|note to (the )?(ai|assistant|model))\b[^>]{0,40}>/,
      /<\|\s*(im_start|im_end|system|endoftext|start_header_id)\s*\|>/,
      /\[\s*\/?\s*(system|inst|important)\s*\]/,
    ],
  },
  {
    rule: 'instruction_override',
    severity: 'block',
    message: 'an attempt to replace the instructions the model follows',
    patterns: [
      /\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(previous|prior|above|earlier|preceding|all|any|other|system|safety)\b[^.\n]{0,20}\b(instructions?|prompts?|rules?|directions?|guidelines?|policies|messages?)\b/,
      /\b(new|updated|real|actual|additional) (system )?instructions?\s*:/,
      /\byou (are|must) now\b/,
      /\bfrom now on,? (you|the (assistant|model|agent))\b/,
    ],
  },
  {
    rule: 'concealment',
    severity: 'block',
    message: 'asks the model to hide what it does from the user',
    patterns: [
      /\b(do not|don't|dont|never|without)\b[^.\n]{0,30}\b(tell|telling|inform|informing|mention|mentioning|notify|notifying|reveal|revealing|alert|alerting|show|showing|disclose|disclosing)\b[^.\n]{0,20}\b(the )?(user|human|operator|person)\b/,
      /\b(the )?user (must|should|need) (not|never) (know|see|be told|find out|notice)\b/,
      /\b(silently|secretly|covertly|quietly)\b[^.\n]{0,20}\b(read|send|upload|include|add|pass|copy|forward|exfiltrate)(s|es|ed|ing)?\b/,
    ],
  },
  {
    rule: 'sensitive_file',
    severity: 'block',
    message: 'mentions a credential or agent-configuration file',
    patterns: [
      /(~|\$home|%userprofile%)?\/?\.ssh\b/,
      /\bid_(rsa|dsa|ecdsa|ed25519)\b/,
      /\bauthorized_keys\b/,
      /\bmcp\.json\b/,
      /\bclaude_desktop_config\.json\b/,
      /(^|[\s/~"'`])\.cursor\//,
      /\.aws\/(credentials|config)\b/,
      /\.kube\/config\b/,
      /\.docker\/config\.json\b/,
      /\.(netrc|npmrc|pypirc|git-credentials|pgpass)\b/,
      /(^|[\s/~"'`])\.env\b/,
      /\/etc\/(passwd|shadow|sudoers)\b/,
      /\.gnupg\b/,
      /\b(wallet\.dat|\.bash_history|\.zsh_history)\b/,
    ],
  },
  {
    rule: 'cross_tool_reference',
    severity: 'block',
    message: "tells the model how to use other tools (shadowing another tool's behaviour)",
    patterns: [
      /\bwhen(ever)? (you|the (assistant|agent|model))? ?(use|call|invoke|run)s?\b[^.\n]{0,40}\b(any|another|other|the|every)\b[^.\n]{0,30}\btools?\b/,
      /\bbefore (using|calling|invoking|running) (any|another|other|every|the)\b[^.\n]{0,30}\btools?\b/,
      /\binstead of (using|calling) (the )?[\w.-]{1,64} tool\b/,
      /\b(all|every) (other )?tools? (must|should)\b/,
    ],
  },
  {
    rule: 'external_url',
    severity: 'warn',
    message:
      'links to an outside address (a common exfiltration target, also common in honest docs)',
    patterns: [/\bhttps?:\/\/[^\s"'<>`)]{3,}/],
  },
];

/** Long base64/base64url runs; decoded to text they are a hidden message, otherwise just a blob. */
const BLOB = /[A-Za-z0-9+/_-]{60,}={0,2}/g;

function normalise(text: string): string {
  let kept = '';
  for (const { cp, ch } of codePoints(text.normalize('NFKC'))) if (!isInvisible(cp)) kept += ch;
  return kept.replace(/\s+/g, ' ').toLowerCase();
}

/** Invisible and control characters shown as \u{..}, so a report never carries them. */
function visible(text: string): string {
  let out = '';
  for (const { cp, ch } of codePoints(text))
    out += isInvisible(cp) || isControl(cp) ? `\\u{${cp.toString(16)}}` : ch;
  return out;
}

function excerpt(text: string, index: number, length: number): string {
  const start = Math.max(0, index - 20);
  const end = Math.min(text.length, index + Math.min(length, 60) + 20);
  return `${start > 0 ? '…' : ''}${visible(text.slice(start, end))}${end < text.length ? '…' : ''}`;
}

function isDistinctive(name: string): boolean {
  // A plain short word ("search", "read") appears in honest prose; these shapes do not.
  return /[_\-.]/.test(name) || /[a-z][A-Z]/.test(name) || name.length >= 8;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Name forms another tool may be mentioned by: the agent-facing `provider.tool` and the bare `tool`. */
function nameForms(name: string): string[] {
  const bare = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : name;
  return [...new Set([name, bare])].filter((n) => n.length >= 3);
}

/** The provider part of an agent-facing `provider.tool` name; undefined for a bare name. */
function providerOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot > 0 ? name.slice(0, dot) : undefined;
}

/** Runs every text rule over one piece of text a model will read. */
function lintText(
  raw: string,
  location: string,
  others: readonly string[],
  out: LintFinding[],
): void {
  const text =
    raw.length > LINT_LIMITS.maxScannedChars ? raw.slice(0, LINT_LIMITS.maxScannedChars) : raw;
  const push = (f: Omit<LintFinding, 'location'>) => {
    if (out.length < LINT_LIMITS.maxFindings) out.push({ ...f, location });
  };

  const invisible: { cp: number; index: number }[] = [];
  const control: { cp: number; index: number }[] = [];
  const chars = [...codePoints(text)];
  chars.forEach(({ cp, index }, i) => {
    if (isControl(cp)) control.push({ cp, index });
    if (!isInvisible(cp)) return;
    const emojiJoin =
      cp === ZWJ &&
      PICTOGRAPHIC.test(chars[i - 1]?.ch ?? '') &&
      PICTOGRAPHIC.test(chars[i + 1]?.ch ?? '');
    if (!emojiJoin) invisible.push({ cp, index });
  });
  const hex = (cp: number) => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  if (invisible.length > 0)
    push({
      rule: 'invisible_unicode',
      severity: 'block',
      message: `${invisible.length} invisible or bidi-control character(s): ${[
        ...new Set(invisible.map((c) => hex(c.cp))),
      ]
        .slice(0, 5)
        .join(', ')}`,
      excerpt: excerpt(text, invisible[0]!.index, 1),
    });
  if (control.length > 0)
    push({
      rule: 'control_characters',
      severity: 'block',
      message: `${control.length} control character(s)${control.some((c) => c.cp === 0x1b) ? ' (terminal escape sequences)' : ''}`,
      excerpt: excerpt(text, control[0]!.index, 1),
    });

  const norm = normalise(text);
  for (const r of PHRASE_RULES) {
    for (const p of r.patterns) {
      const m = p.exec(norm);
      if (m !== null) {
        push({
          rule: r.rule,
          severity: r.severity,
          message: r.message,
          excerpt: excerpt(norm, m.index, m[0].length),
        });
        break;
      }
    }
  }

  for (const other of others) {
    const forms = nameForms(other);
    for (const form of forms) {
      const f = escapeRegExp(form.toLowerCase());
      const re = isDistinctive(form)
        ? new RegExp(`(^|[^\\w.-])${f}($|[^\\w-])`)
        : new RegExp(`\`${f}\`|\\b${f} tool\\b|\\btool ${f}\\b`);
      const m = re.exec(norm);
      if (m !== null) {
        push({
          rule: 'cross_tool_reference',
          severity: 'block',
          message: `mentions another tool, ${other}`,
          excerpt: excerpt(norm, m.index, m[0].length),
        });
        break;
      }
    }
  }

  for (const m of text.matchAll(BLOB)) {
    const blob = m[0];
    // Long identifiers and hex digests are not blobs: ask for mixed case and digits.
    if (!/[a-z]/.test(blob) || !/[A-Z]/.test(blob) || !/[0-9]/.test(blob)) continue;
    const decoded = Buffer.from(blob.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString(
      'latin1',
    );
    const printable =
      decoded.length > 0 ? decoded.replace(/[^\x20-\x7E\t\n\r]/g, '').length / decoded.length : 0;
    const text64 = printable >= 0.9;
    push({
      rule: 'encoded_blob',
      severity: text64 ? 'block' : 'warn',
      message: text64 ? 'base64 that decodes to hidden text' : 'a long encoded blob',
      excerpt: excerpt(text, m.index, blob.length),
    });
    break;
  }
}

/** Every string of the input schema a model reads (descriptions and titles), bounded. */
function schemaTexts(schema: unknown): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  let visited = 0;
  const walk = (node: unknown, path: string, depth: number) => {
    if (visited++ >= LINT_LIMITS.maxSchemaNodes || depth > LINT_LIMITS.maxSchemaDepth) return;
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${path}[${i}]`, depth + 1));
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      const at = /^[A-Za-z_$][\w$]*$/.test(key)
        ? `${path}.${key}`
        : `${path}[${JSON.stringify(key)}]`;
      if ((key === 'description' || key === 'title') && typeof value === 'string')
        out.push({ path: at, text: value });
      else walk(value, at, depth + 1);
    }
  };
  walk(schema, 'inputSchema', 0);
  return out;
}

/**
 * Lints one tool definition: its name, its description and the descriptions inside its input
 * schema. Pure and bounded; the same tool always gives the same findings.
 */
export function lintToolDescription(tool: LintableTool, options: LintOptions = {}): LintFinding[] {
  const findings: LintFinding[] = [];
  const own = new Set(nameForms(tool.name).map((n) => n.toLowerCase()));
  const provider = providerOf(tool.name);
  const others = [...new Set(options.otherToolNames ?? [])].filter(
    (n) =>
      (provider === undefined || providerOf(n) !== provider) &&
      !nameForms(n).some((f) => own.has(f.toLowerCase())),
  );
  const max = options.maxDescriptionLength ?? LINT_LIMITS.maxDescriptionLength;

  // A name is shown to users and models too; it gets the character rules only.
  const nameFindings: LintFinding[] = [];
  lintText(tool.name, 'name', [], nameFindings);
  findings.push(
    ...nameFindings.filter(
      (f) => f.rule === 'invisible_unicode' || f.rule === 'control_characters',
    ),
  );

  if (tool.description !== undefined) {
    lintText(tool.description, 'description', others, findings);
    if (tool.description.length > max)
      findings.push({
        rule: 'excessive_length',
        severity: 'warn',
        location: 'description',
        message: `${tool.description.length} characters (more than ${max}); room for instructions no user reads`,
        excerpt: excerpt(tool.description, max, 0),
      });
  }
  for (const { path, text } of schemaTexts(tool.inputSchema)) {
    lintText(text, path, others, findings);
    if (text.length > LINT_LIMITS.maxSchemaTextLength)
      findings.push({
        rule: 'excessive_length',
        severity: 'warn',
        location: path,
        message: `${text.length} characters (more than ${LINT_LIMITS.maxSchemaTextLength})`,
        excerpt: excerpt(text, LINT_LIMITS.maxSchemaTextLength, 0),
      });
    if (findings.length >= LINT_LIMITS.maxFindings) break;
  }
  return findings.slice(0, LINT_LIMITS.maxFindings);
}

/** True when the linter would hide the tool: at least one `block` finding. */
export function isFlagged(findings: readonly LintFinding[]): boolean {
  return findings.some((f) => f.severity === 'block');
}
