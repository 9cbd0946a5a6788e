// The cursor Kysely streams with (audit export): pg-cursor's, except that
// closing it on a connection that has died does not wait for ever.
//
// pg-cursor's close() sends Close and waits for the server's ReadyForQuery;
// when the server was killed mid-stream no answer comes, so Kysely's
// `finally { await cursor.close() }` would hang and the command would end
// with nothing said (Node's exit 13). Here close() settles at once when the
// read failed because the connection went (a socket error, or the server's
// FATAL on its way down), and otherwise on the server's answer or the
// connection's end, whichever comes first; the read's own error reaches the
// error boundary.
import Cursor from 'pg-cursor';

interface CursorInternals {
  state?: string;
  /** The error a read failed with: FATAL or none (a plain socket error) means the connection is gone. */
  _error?: { severity?: string };
  connection?: { once(event: 'end', listener: () => void): void; removeListener(event: 'end', listener: () => void): void };
}

export class ClosingCursor<Row = unknown> extends Cursor<Row> {
  override close(): Promise<void>;
  override close(callback: (err: Error) => void): undefined;
  override close(callback?: (err: Error) => void): Promise<void> | undefined;
  override close(callback?: (err: Error) => void): Promise<void> | undefined {
    const { state, _error: error, connection } = this as unknown as CursorInternals;
    const severity = error?.severity;
    const gone = state === 'error' && (!severity || severity === 'FATAL' || severity === 'PANIC');
    const closed: Promise<void> = gone
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          // Whichever comes first: the server's answer, or the connection's end.
          const done = (): void => {
            connection?.removeListener('end', done);
            resolve();
          };
          connection?.once('end', done);
          super.close().then(done, done);
        });
    if (!callback) return closed;
    void closed.then(() => callback(undefined as unknown as Error));
    return undefined;
  }
}
