// The one place that turns the environment into Temporal connection settings, for clients and for workers:
// the embedded dev server by default, any cluster or Temporal Cloud through TEMPORAL_* variables.
import * as fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { NativeConnection } from '@temporalio/worker';
import { EvoError, oneLine } from '../../core/errors';
import { addressListening, defaultPorts, readDevServerInfo } from './devserver';
import { SEARCH_ATTRIBUTES } from '../../contract/search-attributes';

export interface TemporalTarget {
  address: string;
  namespace: string;
  /** True when TEMPORAL_ADDRESS is unset: the state dir's embedded server. */
  embedded: boolean;
  /** false = plaintext even with an API key (TEMPORAL_TLS=0, for a local proxy). */
  tls?: TLSConfig | false;
  apiKey?: string;
}

/** First set variable of several spellings; the CLI's own names are accepted so its users need not rename them. */
function env(...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined && value !== '') return { name, value };
  }
  return undefined;
}

function readPem(v: { name: string; value: string }): Buffer {
  try {
    return fs.readFileSync(v.value);
  } catch (err) {
    throw new EvoError(`${v.name}=${v.value} cannot be read: ${oneLine(err)}`);
  }
}

function tlsFlag(): boolean | undefined {
  const v = env('TEMPORAL_TLS');
  if (!v) return undefined;
  if (/^(1|true|yes|on)$/i.test(v.value)) return true;
  if (/^(0|false|no|off)$/i.test(v.value)) return false;
  throw new EvoError(`TEMPORAL_TLS=${v.value} is neither 1 nor 0`);
}

/** Address and namespace only: what a UI link needs, without reading certificates. */
function endpoint(): Pick<TemporalTarget, 'address' | 'namespace' | 'embedded'> & { uiUrl?: string } {
  const explicit = env('TEMPORAL_ADDRESS');
  const embedded = explicit === undefined;
  // The embedded server records where it actually runs; a stale record still names the right port.
  const server = embedded ? readDevServerInfo() : undefined;
  const address = explicit?.value ?? server?.address ?? `127.0.0.1:${defaultPorts().port}`;
  const namespace = env('TEMPORAL_NAMESPACE')?.value ?? server?.namespace ?? 'default';
  const uiUrl = embedded ? server?.uiUrl ?? `http://127.0.0.1:${defaultPorts().uiPort}` : undefined;
  return { address, namespace, embedded, uiUrl };
}

export function temporalTarget(): TemporalTarget {
  const { address, namespace, embedded } = endpoint();
  const apiKey = env('TEMPORAL_API_KEY')?.value;

  const cert = env('TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_CLIENT_CERT_PATH');
  const key = env('TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CLIENT_KEY_PATH');
  const ca = env('TEMPORAL_TLS_CA', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH');
  const serverName = env('TEMPORAL_TLS_SERVER_NAME')?.value;
  if (!!cert !== !!key) {
    throw new EvoError(`mTLS needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY; only ${(cert ?? key)!.name} is set`);
  }
  const flag = tlsFlag();
  if (flag === false && (cert || ca || serverName)) {
    throw new EvoError('TEMPORAL_TLS=0 contradicts the TEMPORAL_TLS_* certificate settings; unset one of them');
  }
  const wantTls = flag ?? !!(apiKey || cert || ca || serverName);
  let tls: TLSConfig | false | undefined;
  if (wantTls) {
    tls = {};
    if (serverName) tls.serverNameOverride = serverName;
    if (ca) tls.serverRootCACertificate = readPem(ca);
    if (cert && key) tls.clientCertPair = { crt: readPem(cert), key: readPem(key) };
  } else if (flag === false) {
    tls = false;
  }
  return { address, namespace, embedded, tls, apiKey };
}

function unreachable(t: TemporalTarget, err?: unknown): EvoError {
  if (t.embedded) {
    return new EvoError(`cannot reach Temporal at ${t.address} — run \`evo up\` or set TEMPORAL_ADDRESS`, 'TEMPORAL_UNREACHABLE');
  }
  const why = err === undefined ? '' : `: ${oneLine(err)}`;
  return new EvoError(`cannot reach Temporal at ${t.address} (TEMPORAL_ADDRESS)${why}`, 'TEMPORAL_UNREACHABLE');
}

interface DescribeNamespace {
  describeNamespace(req: { namespace: string }): Promise<unknown>;
}

/** A wrong namespace otherwise surfaces later as a confusing failure of the first real call. Only
 *  NOT_FOUND is fatal: a Cloud API key may lack the right to describe yet still run workflows. */
async function checkNamespace(service: DescribeNamespace, t: TemporalTarget): Promise<void> {
  try {
    await service.describeNamespace({ namespace: t.namespace });
  } catch (err) {
    if ((err as { code?: number }).code === 5) {
      throw new EvoError(`Temporal namespace '${t.namespace}' does not exist at ${t.address}; create it or set TEMPORAL_NAMESPACE`);
    }
  }
}

// The embedded server is on loopback, so a refused TCP connect means "not running" and is reported at
// once; remote addresses go straight to gRPC (proxies and load balancers may sit in between).
/** Checks the namespace over a new connection, closing the connection if it does not serve it. */
async function checkedOrClosed(connection: Connection | NativeConnection, t: TemporalTarget): Promise<void> {
  try {
    await checkNamespace(connection.workflowService, t);
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw err;
  }
}

export async function connectClient(): Promise<{ client: Client; connection: Connection; namespace: string }> {
  const t = temporalTarget();
  if (t.embedded && !(await addressListening(t.address))) throw unreachable(t);
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: t.address,
      tls: t.tls,
      apiKey: t.apiKey,
      connectTimeout: '10s',
      // grpc-js would send even loopback traffic through an https_proxy from the environment.
      channelArgs: t.embedded ? { 'grpc.enable_http_proxy': 0 } : undefined,
    });
  } catch (err) {
    throw unreachable(t, err);
  }
  await checkedOrClosed(connection, t);
  return { client: new Client({ connection, namespace: t.namespace }), connection, namespace: t.namespace };
}

export async function connectWorkerConnection(): Promise<{ connection: NativeConnection; namespace: string }> {
  const t = temporalTarget();
  if (t.embedded && !(await addressListening(t.address))) throw unreachable(t);
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: t.address, tls: t.tls, apiKey: t.apiKey });
  } catch (err) {
    throw unreachable(t, err);
  }
  await checkedOrClosed(connection, t);
  return { connection, namespace: t.namespace };
}

/**
 * Registers the evolution search attributes on a namespace that lacks them (an existing cluster; the
 * embedded server gets them from its start flags). Temporal Cloud refuses this call: register them there
 * in the Cloud UI or with tcld.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing: Record<string, number> = {};
  for (const key of SEARCH_ATTRIBUTES) {
    const want = encodeSearchAttributeIndexedValueType(key.type)!;
    const have = customAttributes?.[key.name];
    if (have === undefined || have === null) missing[key.name] = want;
    else if (have !== want) {
      throw new EvoError(`search attribute ${key.name} exists in namespace '${namespace}' with another type (want ${key.type})`);
    }
  }
  if (Object.keys(missing).length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  } catch (err) {
    throw new EvoError(`cannot register search attributes ${Object.keys(missing).join(', ')} in '${namespace}': ${oneLine(err)}`);
  }
}

/** Web UI link for the namespace's workflow list, or one workflow (its latest run); undefined when unknown.
 *  TEMPORAL_UI_URL sets the UI's base for a self-hosted cluster. */
export function temporalUiUrl(workflowId?: string): string | undefined {
  const t = endpoint();
  let base = env('TEMPORAL_UI_URL')?.value ?? t.uiUrl;
  if (!base && /\.tmprl\.cloud(:\d+)?$/.test(t.address)) base = 'https://cloud.temporal.io';
  if (!base) return undefined;
  const list = `${base.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(t.namespace)}/workflows`;
  return workflowId === undefined ? list : `${list}/${encodeURIComponent(workflowId)}`;
}
