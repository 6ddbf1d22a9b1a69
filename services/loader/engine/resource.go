package engine

import "context"

// ResourceLoader is implemented by engines that hold personalisation resources (AIGES
// wrapperLoadRes / wrapperUnloadRes). Requests and sessions name loaded resources by id
// in Request.PsrIDs and SessionParams.PsrIDs.
type ResourceLoader interface {
	// LoadResource loads resource id from data (payloads of type DataOther, AIGES DataPer).
	LoadResource(ctx context.Context, id uint32, data []Payload) error
	// UnloadResource unloads resource id.
	UnloadResource(ctx context.Context, id uint32) error
}
