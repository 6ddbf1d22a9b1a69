/* shim.h — C helpers of package cabi: dlopen/dlsym, calls through the resolved function
 * pointers, and the list helpers. Declarations only (cgo //export rules). */
#ifndef ASF_CABI_SHIM_H
#define ASF_CABI_SHIM_H

#include <stdlib.h>
#include "wrapper.h"

void* asf_dlopen(const char* path, char* err, size_t errlen);
void* asf_dlsym(void* h, const char* name);

int asf_set_ctrl(void* f);
int asf_init(void* f, pConfig cfg);
int asf_fini(void* f);
const char* asf_error(void* f, int code);
const char* asf_version(void* f);
int asf_load_res(void* f, pDataList data, unsigned int id);
int asf_unload_res(void* f, unsigned int id);
const void* asf_create(void* f, const char* tag, pParamList params, int async, unsigned int* psr, int psrCnt, int* errNum);
int asf_write(void* f, const void* h, pDataList data);
int asf_read(void* f, const void* h, pDataList* out);
int asf_destroy(void* f, const void* h);
int asf_exec(void* f, const char* tag, pParamList params, pDataList data, pDataList* out, unsigned int* psr, int psrCnt);
int asf_exec_free(void* f, const char* tag, pDataList* out);
int asf_exec_async(void* f, const char* tag, pParamList params, pDataList data, int timeout, unsigned int* psr, int psrCnt);
const char* asf_debug_info(void* f, const void* h);

void asf_free_params(pParamList p);
void asf_free_data(pDataList d);

#endif
