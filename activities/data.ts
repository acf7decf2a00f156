// Data preparation on the control queue: corpus → tokenizer → token files, once per run.
import { prepareData as prepareDataLib } from '../evaluator/data/prepare';
import type { DataSpec, PreparedData } from '../contract';
import { underFailureRule } from './errors';

export async function prepareData(spec: DataSpec): Promise<PreparedData> {
  return underFailureRule(() => prepareDataLib(spec));
}
