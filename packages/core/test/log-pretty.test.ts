import { describe, expect, it } from 'vitest';
import { prettyLine, wantsPrettyLogs } from '../src/log-pretty.js';

describe('logs on a terminal', () => {
  it('are readable lines on a TTY and JSON elsewhere, unless AUTOTLS_LOG_FORMAT says', () => {
    expect(wantsPrettyLogs({}, { isTTY: true })).toBe(true);
    expect(wantsPrettyLogs({}, { isTTY: false })).toBe(false);
    expect(wantsPrettyLogs({ AUTOTLS_LOG_FORMAT: 'json' }, { isTTY: true })).toBe(false);
    expect(wantsPrettyLogs({ AUTOTLS_LOG_FORMAT: 'pretty' }, { isTTY: false })).toBe(true);
  });

  it('keep every field of the record, without pino bookkeeping', () => {
    const line = prettyLine({
      level: 40,
      time: Date.UTC(2026, 0, 1, 12),
      pid: 1,
      hostname: 'h',
      name: 'autotls',
      logger: 'tls.obtain',
      identifier: 'example.com',
      problem: { status: 400 },
      msg: 'could not get certificate',
    });
    expect(line).toMatch(
      /^\d\d:\d\d:\d\d WARN {2}tls\.obtain {2}could not get certificate {2}identifier=example\.com {2}problem=\{"status":400\}\n$/,
    );
    expect(line).not.toContain('hostname');
  });
});
