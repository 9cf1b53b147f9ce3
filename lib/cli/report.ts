// myelin report: a self-contained HTML performance report from a running gateway's
// metrics history (GET /api/metrics/history). The body lands in the next commit.
import { MyelinError } from '../errors.js';

export async function reportCommand(_args: string[]): Promise<number> {
  throw new MyelinError('ERR_INTERNAL', 'myelin report: not built yet');
}
