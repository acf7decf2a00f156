// `node dist/scripts/fetch-temporal.js`: makes sure a Temporal CLI is available (fetching the pinned copy into
// the tools folder if needed) and prints its path on stdout; CI runs it once so tests find the cached copy.
import { findTemporalBinary } from '../ops/temporal/binary';
import { oneLine } from '../core/errors';

findTemporalBinary({ install: true, log: (line) => console.error(line) }).then(
  (binary) => console.log(binary),
  (err) => {
    console.error(`evoscale: ${oneLine(err)}`);
    process.exitCode = 1;
  },
);
