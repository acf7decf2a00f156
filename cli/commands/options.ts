// Options that several commands share, declared once.
import { FRAMEWORKS } from '../../contract';
import { PROFILES } from '../../evaluator/profiles';
import type { OptionSpec } from '../spec';

export const frameworkOption: OptionSpec = { name: 'framework', type: 'string', value: '<name>', required: true, description: `the framework: ${FRAMEWORKS.join(', ')}` };

export const PROFILE_CHOICES = Object.keys(PROFILES).join('|');

export const profileOption: OptionSpec = { name: 'profile', type: 'string', value: PROFILE_CHOICES, default: 'smoke', description: 'evaluator profile: model sizes, training steps, data' };

export const jsonOption: OptionSpec = { name: 'json', type: 'boolean', description: 'print the result as JSON on stdout; progress stays on stderr' };
