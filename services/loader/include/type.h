/*
 * type.h — data types of the AIGES-compatible engine ABI hosted by the ASF loader.
 *
 * Engines (libwrapper.so) include wrapper.h, which includes this file. Names, values and
 * layouts follow the AIGES ABI so existing engines build and load unchanged.
 */
#ifndef ASF_AIGES_TYPE_H
#define ASF_AIGES_TYPE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of control callback handed to the engine by wrapperSetCtrl. */
typedef enum {
    CTMeterCustom = 0, /* func is a wrapperMeterCustom */
    CTMetricsLog  = 1, /* reserved */
    CTTraceLog    = 2  /* func is a wrapperTraceLog */
} CtrlType;

/* Kind of bytes a DataList node carries. */
typedef enum {
    DataText  = 0,
    DataAudio = 1,
    DataImage = 2,
    DataVideo = 3,
    DataPer   = 4  /* personalisation resource */
} DataType;

/* Position of a node in its stream. */
typedef enum {
    DataBegin    = 0,
    DataContinue = 1,
    DataEnd      = 2,
    DataOnce     = 3
} DataStatus;

/* Key/value list: engine config, request parameters and data descriptors. */
struct ParamList {
    char*             key;
    char*             value;
    unsigned int      vlen;
    struct ParamList* next;
};
typedef struct ParamList *pParamList, *pConfig, *pDescList;

/* Data list: request inputs and engine outputs. Descriptor keys: encoding, compress,
 * sample_rate, frame_rate, frame_size, channels, bit_depth, height, width, seq, status. */
struct DataList {
    char*            key;
    void*            data;
    unsigned int     len;
    DataType         type;
    DataStatus       status;
    pDescList        desc;
    struct DataList* next;
};
typedef struct DataList* pDataList;

/* Result callback of async sessions and wrapperExecAsync; may be called from any thread.
 * ret != 0 is an error whose text comes from wrapperError. respData stays owned by the
 * engine: the loader copies it before returning. */
typedef int (*wrapperCallback)(const void* usrTag, pDataList respData, int ret);

/* Custom metering: count units of meterKey for the request or session usrTag. */
typedef int (*wrapperMeterCustom)(const void* usrTag, const char* meterKey, int count);

/* Trace log: key/value attached to the request or session usrTag. */
typedef int (*wrapperTraceLog)(const char* usrTag, const char* key, const char* value);

#ifdef __cplusplus
}
#endif

#endif /* ASF_AIGES_TYPE_H */
