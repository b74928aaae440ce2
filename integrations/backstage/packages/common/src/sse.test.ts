import { SseEvent, SseParser } from './sse';

describe('SseParser', () => {
  function parse(chunks: string[]): SseEvent[] {
    const out: SseEvent[] = [];
    const p = new SseParser(e => out.push(e));
    chunks.forEach(c => p.push(c));
    return out;
  }

  it('parses events split anywhere, with ids, comments and CRLF', () => {
    const text = ': keepalive\r\nid: 7\r\nevent: log\r\ndata: {"line":"a"}\r\n\r\nevent: end\ndata: x\ndata: y\n\n';
    const whole = parse([text]);
    expect(whole).toEqual([
      { event: 'log', data: '{"line":"a"}', id: '7' },
      { event: 'end', data: 'x\ny' },
    ]);
    /* The same bytes one character at a time, so a CR and its LF land in different chunks. */
    expect(parse(text.split(''))).toEqual(whole);
  });

  it('ignores an event without data and defaults the type to message', () => {
    expect(parse(['event: nothing\n\ndata:plain\n\n'])).toEqual([{ event: 'message', data: 'plain' }]);
  });
});
