import { GroupCommit } from './group-commit';

/** A send whose calls the test answers by hand. */
function manualSend() {
  const calls: {
    items: readonly number[];
    answer: (r: readonly string[]) => void;
    fail: (e: unknown) => void;
  }[] = [];
  const send = (items: readonly number[]) =>
    new Promise<readonly string[]>((answer, fail) => calls.push({ items, answer, fail }));
  return { calls, send };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('GroupCommit', () => {
  const options = { maxItems: 3, maxBytes: 100, sizeOf: (n: number) => n };

  it('sends an item at once when nothing is in flight (no timer), and groups those arriving meanwhile', async () => {
    const { calls, send } = manualSend();
    const group = new GroupCommit(send, options);
    const first = group.submit(1);
    expect(calls.map((c) => c.items)).toEqual([[1]]); // synchronously, before any tick
    const rest = [group.submit(2), group.submit(3)];
    expect(calls).toHaveLength(1);
    calls[0]!.answer(['one']);
    expect(await first).toBe('one');
    await settle();
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3]]);
    calls[1]!.answer(['two', 'three']);
    expect(await Promise.all(rest)).toEqual(['two', 'three']);
    // Idle again: the next item goes alone, at once.
    void group.submit(4);
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3], [4]]);
  });

  it('bounds a group by count and by bytes; an item larger than the byte bound goes alone', async () => {
    const { calls, send } = manualSend();
    const group = new GroupCommit(send, options);
    const all = [1, 2, 3, 4, 5, 60, 50, 500, 7].map((n) => group.submit(n));
    const answerAll = async () => {
      for (let i = 0; i < calls.length; i++) {
        calls[i]!.answer(calls[i]!.items.map(String));
        await settle();
      }
    };
    await answerAll();
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3, 4], [5, 60], [50], [500], [7]]);
    expect(await Promise.all(all)).toEqual(['1', '2', '3', '4', '5', '60', '50', '500', '7']);
  });

  it('fails every item of a failed group with that error, and only that group', async () => {
    const { calls, send } = manualSend();
    const group = new GroupCommit(send, options);
    const first = group.submit(1);
    const failing = [group.submit(2), group.submit(3)];
    calls[0]!.answer(['one']);
    await first;
    await settle();
    const later = group.submit(4);
    const boom = new Error('connection lost');
    calls[1]!.fail(boom);
    for (const p of failing) await expect(p).rejects.toBe(boom);
    await settle();
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3], [4]]);
    calls[2]!.answer(['four']);
    expect(await later).toBe('four');
  });

  it('fails the group when send throws synchronously or answers the wrong number of results', async () => {
    const thrown = new Error('sync');
    let calls = 0;
    const flaky = new GroupCommit<number, string>((items) => {
      calls++;
      if (calls === 1) throw thrown;
      if (calls === 2) return Promise.resolve([]);
      return Promise.resolve(items.map(String));
    }, options);
    await expect(flaky.submit(1)).rejects.toBe(thrown);
    await expect(flaky.submit(2)).rejects.toThrow('a group of 1 got 0 results');
    // Neither left the group stuck: the next item is sent and answered.
    expect(await flaky.submit(9)).toBe('9');
  });
});
