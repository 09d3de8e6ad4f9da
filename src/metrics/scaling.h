/* The leader's autoscaling loop (the I/O shell around orchestrator/autoscale.h): on each
 * tick it folds its own figures into the cluster view, asks the pure autoscaler for
 * decisions and commits them one at a time as service.scale commands with their event. */
#ifndef ORCH_SCALING_H
#define ORCH_SCALING_H

struct daemon;
void scaling_tick(struct daemon *d);

#endif
