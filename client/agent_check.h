/*
 * chipagent --check-config: everything the agent checks when it starts,
 * and what it can only find out by trying, without starting it.
 */
#ifndef AGENT_CHECK_H
#define AGENT_CHECK_H

/*
 * Checks the config file at path, and then, one line each on stdout
 * (`ok   WHAT` or `FAIL WHAT: WHY`): the file (a failure stops here), every
 * chip's key file (readable, owner-only, a valid key, no two chips with one
 * key), the metrics address (bindable now) when [metrics] listen is set,
 * and every landmark (a TCP connection within timeout_ms and a Hello of
 * protocol 2 naming the pinned key and a cipher suite the agent speaks).
 * Returns the exit status: 2 when chipagent would refuse to start (config,
 * key or metrics address), else 1 when a landmark failed (chipagent would
 * run and keep retrying it), else 0.
 */
int agent_check_config(const char *path, unsigned timeout_ms);

#endif
