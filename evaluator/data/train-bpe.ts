// Child-process entry that trains a byte-level BPE on corpus files and saves it as tokenizer JSON.
// It runs apart from its caller because the native trainer writes progress bars straight to stdout.
import * as fs from 'node:fs';
import { BPE, Tokenizer, byteLevelPreTokenizer } from 'tokenizers';

export interface BpeTrainingRequest {
  files: string[];
  trainedTokenizerPath: string;
}

const request = JSON.parse(fs.readFileSync(0, 'utf8')) as BpeTrainingRequest;
const tokenizer = new Tokenizer(BPE.init({}, []));
// No prefix space: decoding must give back exactly the text that was encoded.
tokenizer.setPreTokenizer(byteLevelPreTokenizer(false, true));
tokenizer.train(request.files);
tokenizer.save(request.trainedTokenizerPath, false);
