// The custom search attributes evolution runs set so they can be found and filtered in the Web UI.
// Workflow-safe: only @temporalio/common, so workflow code can import the typed keys.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const EvoFramework = defineSearchAttributeKey('EvoFramework', SearchAttributeType.KEYWORD);
export const EvoIteration = defineSearchAttributeKey('EvoIteration', SearchAttributeType.INT);
export const EvoBestFitness = defineSearchAttributeKey('EvoBestFitness', SearchAttributeType.DOUBLE);
export const EvoStatus = defineSearchAttributeKey('EvoStatus', SearchAttributeType.KEYWORD);

/** Every attribute a server must have registered before an evolution workflow starts. */
export const SEARCH_ATTRIBUTES = [EvoFramework, EvoIteration, EvoBestFitness, EvoStatus] as const;

/** The spelling `temporal server start-dev --search-attribute Name=Type` expects. */
const CLI_TYPE_NAMES: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export function searchAttributeCliFlags(): string[] {
  return SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${CLI_TYPE_NAMES[key.type]}`]);
}
