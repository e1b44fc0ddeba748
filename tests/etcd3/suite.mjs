// The npm etcd3 client — written by others, for etcd — against rdb-etcd. Run by run.sh,
// which starts a cluster and a gateway and sets ETCD_ENDPOINT. Watch-based features
// (election, watchers) wait for the gateway's Watch.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, EtcdLockFailedError } from 'etcd3';

const endpoint = process.env.ETCD_ENDPOINT;
assert.ok(endpoint, 'ETCD_ENDPOINT must name the gateway');
const client = new Etcd3({ hosts: endpoint });
after(() => client.close());

test('put, get, prefixes, counts and deletes', async () => {
  await client.put('kv/a').value('1');
  await client.put('kv/b').value('2');
  await client.put('kv/c').value('3');
  assert.equal(await client.get('kv/a').string(), '1');
  assert.equal(await client.get('kv/missing').string(), null);
  assert.deepEqual(await client.getAll().prefix('kv/').strings(), { 'kv/a': '1', 'kv/b': '2', 'kv/c': '3' });
  assert.deepEqual(await client.getAll().prefix('kv/').limit(2).keys(), ['kv/a', 'kv/b']);
  assert.equal(await client.getAll().prefix('kv/').count(), 3);
  assert.deepEqual(await client.getAll().prefix('kv/').sort('Key', 'Descend').keys(), ['kv/c', 'kv/b', 'kv/a']);
  const deleted = await client.delete().key('kv/b').exec();
  assert.equal(Number(deleted.deleted), 1);
  assert.deepEqual(await client.getAll().prefix('kv/').keys(), ['kv/a', 'kv/c']);
  await client.delete().prefix('kv/');
  assert.equal(await client.getAll().prefix('kv/').count(), 0);
});

test('versions and revisions', async () => {
  const first = await client.put('rev/k').value('1').exec();
  const second = await client.put('rev/k').value('2').exec();
  assert.ok(BigInt(second.header.revision) > BigInt(first.header.revision), 'revisions grow');
  const res = await client.get('rev/k').exec();
  const kv = res.kvs[0];
  assert.equal(kv.version, '2');
  assert.equal(kv.create_revision, first.header.revision);
  assert.equal(kv.mod_revision, second.header.revision);
  const past = await client.get('rev/k').revision(first.header.revision).string();
  assert.equal(past, '1', 'a read at a past revision');
});

test('transactions: compare, then and else', async () => {
  await client.put('txn/k').value('v1');
  const ok = await client.if('txn/k', 'Value', '==', 'v1').then(client.put('txn/k').value('v2')).else(client.get('txn/k')).commit();
  assert.equal(ok.succeeded, true);
  const no = await client.if('txn/k', 'Value', '==', 'v1').then(client.put('txn/k').value('v3')).else(client.get('txn/k')).commit();
  assert.equal(no.succeeded, false);
  assert.equal(no.responses[0].response_range.kvs[0].value.toString(), 'v2');
  const created = await client.if('txn/new', 'Create', '==', 0).then(client.put('txn/new').value('x')).commit();
  assert.equal(created.succeeded, true);
  assert.equal(await client.get('txn/k').string(), 'v2');
});

test('software transactional memory: concurrent increments all count', async () => {
  await client.put('stm/counter').value('0');
  const workers = 8, each = 5;
  const increment = () =>
    client.stm({ retries: 100 }).transact(async (tx) => {
      const n = Number(await tx.get('stm/counter').string());
      await tx.put('stm/counter').value(String(n + 1));
    });
  await Promise.all(Array.from({ length: workers }, async () => {
    for (let i = 0; i < each; i++) await increment();
  }));
  assert.equal(await client.get('stm/counter').string(), String(workers * each));
});

test('leases: keys go with a revoked lease; keep-alive keeps one', async () => {
  const lease = client.lease(10);
  await lease.put('lease/a').value('x');
  await lease.put('lease/b').value('y');
  const id = await lease.grant();
  assert.ok(id);
  assert.equal(await client.get('lease/a').string(), 'x');
  const kept = await lease.keepaliveOnce();
  assert.equal(Number(kept.TTL), 10);
  await lease.revoke();
  assert.ok(lease.revoked());
  assert.equal(await client.get('lease/a').string(), null);
  assert.equal(await client.get('lease/b').string(), null);
});

test('a lease the client keeps alive outlives its TTL', async () => {
  const lease = client.lease(2);
  await lease.put('alive/k').value('v');
  let lost = false;
  lease.on('lost', () => { lost = true; });
  // The client keeps it alive on its own (LeaseKeepAlive stream) for three TTLs.
  await new Promise((resolve) => setTimeout(resolve, 6000));
  assert.equal(lost, false);
  assert.equal(await client.get('alive/k').string(), 'v');
  await lease.revoke();
  assert.equal(await client.get('alive/k').string(), null);
});

test('locks: one holder at a time', async () => {
  const order = [];
  await client.lock('locks/l').ttl(10).do(async () => {
    order.push('held');
    await assert.rejects(client.lock('locks/l').ttl(10).acquire(), EtcdLockFailedError);
  });
  const again = await client.lock('locks/l').ttl(10).acquire();
  order.push('again');
  await again.release();
  assert.deepEqual(order, ['held', 'again']);
});

test('watch: puts and deletes of a prefix arrive in order', async () => {
  const watcher = await client.watch().prefix('watch/').withPreviousKV().create();
  const seen = [];
  watcher.on('put', (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
  watcher.on('delete', (kv, prev) => seen.push(`delete ${kv.key.toString()} (was ${prev ? prev.value.toString() : '?'})`));
  await client.put('watch/a').value('1');
  await client.put('watch/b').value('2');
  await client.put('elsewhere').value('x');
  await client.put('watch/a').value('3');
  await client.delete().key('watch/b');
  const deadline = Date.now() + 20000;
  while (seen.length < 4 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await watcher.cancel();
  assert.deepEqual(seen, ['put watch/a=1', 'put watch/b=2', 'put watch/a=3', 'delete watch/b (was 2)']);
});

test('election: the first candidate leads; on resign the next one does', async () => {
  const election = client.election('election-test', 5);
  const observer = await election.observe();
  const deadline = Date.now() + 20000;
  const until = async (cond) => {
    while (!cond() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const first = election.campaign('first');
  await first.wait();
  // The observer learns of a leader from a watch event: let it see the first one before
  // the second candidate writes (its loop takes the last put of events that arrive together).
  await until(() => observer.leader() === 'first');
  assert.equal(observer.leader(), 'first');
  const second = election.campaign('second');
  let secondElected = false;
  second.on('elected', () => { secondElected = true; });
  await second.getCampaignKey();
  assert.equal(secondElected, false, 'the second candidate waits while the first leads');
  await first.resign();
  await second.wait();  // the second candidate watched the first's key go
  await until(() => observer.leader() === 'second');
  assert.equal(observer.leader(), 'second');
  await second.resign();
  await observer.cancel();
});
