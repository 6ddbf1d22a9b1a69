/*
 * type.h — data types of the AIGES-compatible engine ABI hosted by the ASF loader.
 *
 * Engines (libwrapper.so) include wrapper.h, which includes this file. Names, values and
 * layouts are those of AIGES's own type.h, so engines written against AIGES build and
 * load unchanged, from C or C++:
 *
 *   - the export macro is spelled WrapperAPI, as in AIGES (wrapper.h adds WRAPPER_API);
 *   - ParamList and DataList are declared as AIGES declares them (the pointer typedefs
 *     pParamList, pConfig, pDescList and pDataList; no typedef of the struct names);
 *   - the include guard is shared with AIGES's __AIGES_TYPE_H__, so an engine tree that
 *     also carries a copy of AIGES's type.h gets the types once, from whichever header
 *     comes first.
 */
#if !defined(ASF_AIGES_TYPE_H) && !defined(__AIGES_TYPE_H__)
#define ASF_AIGES_TYPE_H
#define __AIGES_TYPE_H__

/*
 * WrapperAPI gives an engine function default visibility, so it is exported even when the
 * engine is compiled with -fvisibility=hidden. Spelled exactly as AIGES spells it (space
 * included) so a second, identical definition in an engine's own header is no redefinition.
 * Put it before the return type or between an int return type and the name; after a '*'
 * g++ ignores it with a -Wattributes warning (so does AIGES's header).
 */
#ifndef WrapperAPI
#define WrapperAPI __attribute__ ((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of control callback handed to the engine by wrapperSetCtrl. */
typedef enum {
    CTMeterCustom = 0,  /* func is a wrapperMeterCustom */
    CTMetricsLog  = 1,  /* reserved: never handed out */
    CTTraceLog    = 2,  /* func is a wrapperTraceLog */
    CTCalcCustom  = 99  /* func would be a wrapperCalc: declared by some AIGES releases,
                         * never handed out by this loader */
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
    DataOnce     = 3  /* once (non-session) input or output */
} DataStatus;

/* Key/value list: engine config, request parameters and data descriptors. value holds
 * vlen bytes and is also NUL-terminated by the loader. */
typedef struct ParamList {
    char*             key;
    char*             value;
    unsigned int      vlen;
    struct ParamList* next;
} *pParamList, *pConfig, *pDescList;

/* Data list: request inputs and engine outputs. Descriptor keys: encoding, compress,
 * sample_rate, frame_rate, frame_size, channels, bit_depth, height, width, seq, status. */
typedef struct DataList {
    char*            key;     /* input or output name */
    void*            data;
    unsigned int     len;     /* bytes at data */
    DataType         type;
    DataStatus       status;
    pDescList        desc;
    struct DataList* next;
} *pDataList;

#ifdef __cplusplus
}
#endif

#endif /* ASF_AIGES_TYPE_H / __AIGES_TYPE_H__ */
