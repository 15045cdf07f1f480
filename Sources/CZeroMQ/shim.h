#ifndef CZEROMQ_SHIM_H
#define CZEROMQ_SHIM_H
/* libzmq only; OS glue lives in CPoolSystem. */
#include <zmq.h>
#endif
