// The activities the control worker serves on the control queue (cheap on CPU, or waiting on an LLM);
// training is on the device queue (activities/train.ts).
export * from './data';
export * from './propose';
export * from './validate';
export * from './score';
export * from './archive';
