"""The CatalogService servicer: proto in, command to the use case, proto out."""

from __future__ import annotations

from typing import Any

from emporium.catalog.v1 import catalog_service_pb2 as pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from emporium.common.v1 import money_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from services.catalog.domain import CreateProduct, ListProducts, Price, Product, UpdateProduct
from services.catalog.handlers import Catalog

Context = aio.ServicerContext[Any, Any]


def _timestamp(us: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def product_proto(product: Product) -> pb.Product:
    return pb.Product(
        product_id=product.product_id,
        sku=product.sku,
        name=product.name,
        description=product.description,
        category_id=product.category_id,
        price=money_pb2.Money(
            amount_minor=product.price.amount_minor, currency_code=product.price.currency_code
        ),
        image_url=product.image_url,
        active=product.active,
        create_time=_timestamp(product.created_at_us),
        update_time=_timestamp(product.updated_at_us),
    )


def _price(money: money_pb2.Money) -> Price:
    return Price(money.amount_minor, money.currency_code)


class CatalogServicer(pb_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def ListProducts(
        self, request: pb.ListProductsRequest, context: Context
    ) -> pb.ListProductsResponse:
        page = await self._catalog.list_products(
            ListProducts(request.page_size, request.page_token, request.category_id, request.query)
        )
        return pb.ListProductsResponse(
            products=[product_proto(p) for p in page.products],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def GetProduct(
        self, request: pb.GetProductRequest, context: Context
    ) -> pb.GetProductResponse:
        product = await self._catalog.get_product(request.product_id)
        return pb.GetProductResponse(product=product_proto(product))

    async def BatchGetProducts(
        self, request: pb.BatchGetProductsRequest, context: Context
    ) -> pb.BatchGetProductsResponse:
        found = await self._catalog.batch_get_products(list(request.product_ids))
        return pb.BatchGetProductsResponse(products=[product_proto(p) for p in found])

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
                price=_price(request.price) if request.HasField("price") else None,
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
                price=_price(r.price) if r.HasField("price") else None,
                image_url=r.image_url if r.HasField("image_url") else None,
                active=r.active if r.HasField("active") else None,
            )
        )
        return pb.UpdateProductResponse(product=product_proto(product))
