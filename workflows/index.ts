// The workflow code a worker bundles: the evolution run and its iteration children.
export * from './evolution';
export * from './iteration';
