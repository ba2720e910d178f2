// SPDX-License-Identifier: GPL-2.0
/*
 * skb_drop PORT to|from MARKER: drop the first arrival of each TCP segment on the loopback to
 * (or from) PORT whose payload starts with the byte MARKER, or with MARKER "ack" each
 * connection's handshake-ending ACK (tests/bpf/skb_drop.bpf.c). Prints
 * "ready" once attached; on SIGTERM or SIGINT detaches and prints "dropped N".
 */
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "skb_drop.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 0x7a, .priority = 1);
	struct skb_drop_bpf *skel;
	bool created = false;
	int err;

	if (argc != 4 || (strcmp(argv[2], "to") && strcmp(argv[2], "from")) || !argv[3][0]) {
		fprintf(stderr, "usage: skb_drop PORT to|from MARKER\n");
		return 2;
	}
	skel = skb_drop_bpf__open();
	if (!skel)
		return 1;
	skel->rodata->port = atoi(argv[1]);
	skel->rodata->from_port = !strcmp(argv[2], "from");
	skel->rodata->marker = strcmp(argv[3], "ack") ? argv[3][0] : 0;
	if (skb_drop_bpf__load(skel)) {
		fprintf(stderr, "skb_drop: cannot load: %s\n", strerror(errno));
		return 1;
	}
	hook.ifindex = if_nametoindex("lo");
	err = bpf_tc_hook_create(&hook);
	if (!err)
		created = true;
	else if (err != -EEXIST) {
		fprintf(stderr, "skb_drop: no clsact on lo: %s\n", strerror(-err));
		return 1;
	}
	opts.prog_fd = bpf_program__fd(skel->progs.drop_once);
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		fprintf(stderr, "skb_drop: cannot attach: %s\n", strerror(-err));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	opts.flags = opts.prog_fd = opts.prog_id = 0;
	bpf_tc_detach(&hook, &opts);
	if (created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
	printf("dropped %llu\n", (unsigned long long)skel->bss->dropped);
	skb_drop_bpf__destroy(skel);
	return 0;
}
