"""The CatalogService servicer: proto in, command to the use case, proto out."""

from __future__ import annotations

from emporium.catalog.v1 import catalog_service_pb2 as pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as pb_grpc

from services.catalog.codec import ProductMessages, price_from, product_proto
from services.catalog.domain import CreateProduct, ListProducts, UpdateProduct
from services.catalog.handlers import Catalog
from services.platform.types import Context


class CatalogServicer(pb_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._messages = ProductMessages()

    async def ListProducts(
        self, request: pb.ListProductsRequest, context: Context
    ) -> pb.ListProductsResponse:
        page = await self._catalog.list_products(
            ListProducts(request.page_size, request.page_token, request.category_id, request.query)
        )
        return pb.ListProductsResponse(
            products=[self._messages.of(p) for p in page.products],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def GetProduct(
        self, request: pb.GetProductRequest, context: Context
    ) -> pb.GetProductResponse:
        product = await self._catalog.get_product(request.product_id)
        return pb.GetProductResponse(product=self._messages.of(product))

    async def BatchGetProducts(
        self, request: pb.BatchGetProductsRequest, context: Context
    ) -> pb.BatchGetProductsResponse:
        found = await self._catalog.batch_get_products(list(request.product_ids))
        return pb.BatchGetProductsResponse(products=[self._messages.of(p) for p in found])

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        categories = await self._catalog.list_categories()
        return pb.ListCategoriesResponse(
            categories=[pb.Category(category_id=c.category_id, name=c.name) for c in categories]
        )

    async def CreateProduct(
        self, request: pb.CreateProductRequest, context: Context
    ) -> pb.CreateProductResponse:
        product = await self._catalog.create_product(
            CreateProduct(
                sku=request.sku,
                name=request.name,
                description=request.description,
                category_id=request.category_id,
                price=price_from(request.price) if request.HasField("price") else None,
                image_url=request.image_url,
            )
        )
        return pb.CreateProductResponse(product=product_proto(product))

    async def UpdateProduct(
        self, request: pb.UpdateProductRequest, context: Context
    ) -> pb.UpdateProductResponse:
        r = request  # proto3 `optional`: HasField tells "set" from "left out"
        product = await self._catalog.update_product(
            UpdateProduct(
                product_id=r.product_id,
                name=r.name if r.HasField("name") else None,
                description=r.description if r.HasField("description") else None,
                category_id=r.category_id if r.HasField("category_id") else None,
                price=price_from(r.price) if r.HasField("price") else None,
                image_url=r.image_url if r.HasField("image_url") else None,
                active=r.active if r.HasField("active") else None,
            )
        )
        return pb.UpdateProductResponse(product=product_proto(product))
