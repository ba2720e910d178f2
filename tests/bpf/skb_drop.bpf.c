// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Segment loss for the tests of the socket-buffer hooks, on a kernel built without netem: a tc
 * program on the loopback's ingress that drops the first arrival of each TCP segment to (or
 * from) one port whose payload starts with a marker byte, and lets its retransmission through;
 * or each connection's handshake-ending ACK.
 * It runs before the receiving socket's cgroup hooks, so the receiver sees the loss as a gap
 * and the sender's hooks see the retransmission: what a lossy network does.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u16 port = 0;	   /* host order */
const volatile __u8 from_port = 0; /* 1: segments from port (answers), 0: to it (requests) */
const volatile __u8 marker = 'b';  /* 0: the handshake's last ACK instead */

__u64 dropped;

struct seg {
	__u16 sport, dport;
	__u32 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct seg);
	__type(value, __u8);
} seen SEC(".maps");

#define TC_ACT_OK   0
#define TC_ACT_SHOT 2

SEC("tc")
int drop_once(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u8 *b = (__u8 *)data + 14, first, one = 1; /* after the (loopback's) Ethernet header */
	struct seg k = {};
	__u32 off;

	if (skb->protocol != bpf_htons(0x0800) || (void *)(b + 20) > end || b[9] != 6)
		return TC_ACT_OK;
	off = (b[0] & 0xf) * 4;
	if (off < 20 || off > 60)
		return TC_ACT_OK;
	b += off;
	if ((void *)(b + 20) > end)
		return TC_ACT_OK;
	k.sport = (__u16)b[0] << 8 | b[1];
	k.dport = (__u16)b[2] << 8 | b[3];
	k.seq = (__u32)b[4] << 24 | (__u32)b[5] << 16 | (__u32)b[6] << 8 | b[7];
	if ((from_port ? k.sport : k.dport) != port)
		return TC_ACT_OK;
	off += 14 + (b[12] >> 4) * 4;
	if (!marker) {
		/* The first segment of each connection with no payload and only ACK set: the
		 * handshake's last. The client's first data then completes the handshake. */
		if (skb->len > off || b[13] != 0x10)
			return TC_ACT_OK;
		k.seq = 0;
	} else if (skb->len <= off || bpf_skb_load_bytes(skb, off, &first, 1) || first != marker) {
		return TC_ACT_OK;
	}
	if (bpf_map_lookup_elem(&seen, &k))
		return TC_ACT_OK; /* the retransmission */
	bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
	__sync_fetch_and_add(&dropped, 1);
	return TC_ACT_SHOT;
}
