/* SPDX-License-Identifier: GPL-2.0 */
/* _internal_pod_id: the label that tells a deployment's pods apart without naming them. */
#ifndef TAPIR_POD_ID_H
#define TAPIR_POD_ID_H

#define TAPIR_POD_ID_HEX 16 /* the first 64 bits of a SHA-256, in hex */

/*
 * Write the _internal_pod_id of the replica at cgroup path @rel (relative to the cgroup root)
 * into @out (TAPIR_POD_ID_HEX + 1 bytes): a hash of its pod's uid, or of @rel outside
 * Kubernetes; "" if hashing fails.
 */
void tapir_pod_id(const char *rel, char *out);

#endif
