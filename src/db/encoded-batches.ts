/**
 * A stream asked for lines (QueryOptions.lines) whose driver returns rows: each batch is encoded
 * here, as the batch arrives, into EncodedRows. Every layer above (the row stream, the query
 * runner's stream, the response's encoder, the Readable) then passes an item per batch (or per
 * chunk of a batch of wide rows) instead of one per row, and each of those layers costs an awaited
 * promise per item: on PostgreSQL about a quarter of the main thread's time per streamed row
 * (bench/README.md, "Every driver's stream encoded a batch at a time"). The lines are the ones
 * encodeRows writes for the same rows: the same encoders, chosen by the first row's columns.
 */
import { CHUNK_CHARS, rowEncoder, type RowEncoder } from '../endpoints/row-encoders.js';
import type { BatchSource } from './row-stream.js';
import { EncodedRows, type LineEncoding, type Row } from './types.js';

/**
 * `source`'s batches as EncodedRows of about CHUNK_CHARS characters each (what encodeRows would
 * write at a time), at most `lines.maxRows` rows in all. A batch that already is
 * EncodedRows (SQLite's worker encodes where the statement runs) passes as it is.
 *
 * The consumer stops the stream once it has maxRows rows (encodeRows does); a batch asked for after
 * that stops the statement here and ends the stream.
 */
export function encodedBatches(source: BatchSource<Row | EncodedRows>, lines: LineEncoding): BatchSource<Row | EncodedRows> {
  const limit = lines.maxRows ?? Infinity;
  let sent = 0;
  /** Fixed by the first row: its columns and their encoder. */
  let lineOf: { columns: string[]; encode: RowEncoder } | undefined;
  return {
    next: async () => {
      if (sent >= limit) {
        await source.stop();
        return null;
      }
      const batch = await source.next();
      if (batch === null || batch.length === 0) return batch;
      if (batch[0] instanceof EncodedRows) {
        for (const item of batch) sent += (item as EncodedRows).rows;
        return batch;
      }
      const rows = batch as Row[];
      const n = Math.min(rows.length, limit - sent);
      if (lineOf === undefined) {
        const columns = Object.keys(rows[0]);
        lineOf = { columns, encode: rowEncoder(lines.format, columns, lines.eol) };
      }
      const { columns, encode } = lineOf;
      // A batch of wide rows makes several chunks, each the size encodeRows writes at a time.
      const items: EncodedRows[] = [];
      let text = '';
      let inText = 0;
      for (let i = 0; i < n; i++) {
        text += inText === 0 ? encode(rows[i]) : lines.separator + encode(rows[i]);
        inText++;
        if (text.length >= CHUNK_CHARS) {
          items.push(new EncodedRows(text, inText, columns));
          text = '';
          inText = 0;
        }
      }
      if (inText > 0) items.push(new EncodedRows(text, inText, columns));
      sent += n;
      return items;
    },
    stop: (overran) => source.stop(overran),
  };
}
