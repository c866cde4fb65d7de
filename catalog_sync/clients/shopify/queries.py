"""The GraphQL documents the Shopify client sends, their estimated costs, and the page sizes that keep them affordable.

Costs follow Shopify's documented rules (object 1, scalar 0, connection 2 + first x node cost), rounded up so a
page never trips MAX_COST_EXCEEDED: a product with its category and featured-media image objects, a variant with
its selectedOptions, a line item with product, variant, price set and attributes.
"""

MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
# Variants asked for with each product of a page; products with more get the rest in follow-up queries.
VARIANTS_PER_PRODUCT = 10
VARIANTS_FOLLOW_UP_PAGE = 250
# Shopify allows 2,000 variants per product: 8 follow-up pages of 250, with room to spare.
MAX_VARIANT_PAGES = 10
LINE_ITEMS_PER_ORDER = 5
LINE_ITEMS_FOLLOW_UP_PAGE = 100
MAX_LINE_ITEM_PAGES = 50

_PRODUCT_NODE_COST = 6
_VARIANT_NODE_COST = 2
# An order with its customer object (the id only, to key its lines; never other customer fields).
_ORDER_NODE_COST = 3
_LINE_ITEM_NODE_COST = 6

_PRODUCT_FIELDS = """
      id
      legacyResourceId
      title
      handle
      descriptionHtml
      vendor
      productType
      category { fullName }
      tags
      status
      onlineStoreUrl
      featuredMedia { preview { image { url } } }
      totalInventory
      updatedAt
"""
_VARIANT_FIELDS = """
        id
        sku
        title
        position
        price
        compareAtPrice
        inventoryQuantity
        availableForSale
        selectedOptions { name value }
"""
_LINE_ITEM_FIELDS = """
        id
        quantity
        sku
        product { id }
        variant { id }
        originalUnitPriceSet { shopMoney { amount currencyCode } }
        customAttributes { key value }
"""

PRODUCTS_QUERY = (
    """
query BitrecsProducts($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query, sortKey: ID) {
    nodes {
"""
    + _PRODUCT_FIELDS
    + f"""
      variants(first: {VARIANTS_PER_PRODUCT}) {{
        nodes {{
"""
    + _VARIANT_FIELDS
    + """
        }
        pageInfo { hasNextPage endCursor }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
)

PRODUCT_VARIANTS_QUERY = (
    """
query BitrecsProductVariants($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    id
    variants(first: $first, after: $after) {
      nodes {
"""
    + _VARIANT_FIELDS
    + """
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
)


def _orders_query(*, name: str, customer: str) -> str:
    return (
        f"""
query {name}($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: ID) {{
    nodes {{
      id
      createdAt
{customer}      lineItems(first: {LINE_ITEMS_PER_ORDER}) {{
        nodes {{
"""
        + _LINE_ITEM_FIELDS
        + """
        }
        pageInfo { hasNextPage endCursor }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    )


# The customer's id only (to key the order's lines, never stored); without it for a shop that denies it access.
ORDERS_QUERY = _orders_query(name="BitrecsOrders", customer="      customer { id }\n")
ORDERS_WITHOUT_CUSTOMER_QUERY = _orders_query(name="BitrecsOrdersAnonymous", customer="")

ORDER_LINE_ITEMS_QUERY = (
    """
query BitrecsOrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    id
    lineItems(first: $first, after: $after) {
      nodes {
"""
    + _LINE_ITEM_FIELDS
    + """
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
)

PRODUCTS_COUNT_QUERY = "query ProductsCount { productsCount(limit: null) { count precision } }"
SHOP_CURRENCY_QUERY = "query BitrecsShop { shop { currencyCode } }"

# The bulk query: no `first` (bulk connections are unbounded), edges/node as the bulk guide writes them, and a
# single nested connection, so each variant row carries its product's id in `__parentId`.
BULK_PRODUCTS_QUERY = (
    """
{
  products {
    edges {
      node {
"""
    + _PRODUCT_FIELDS
    + """
        variants {
          edges {
            node {
"""
    + _VARIANT_FIELDS
    + """
            }
          }
        }
      }
    }
  }
}
"""
)

BULK_RUN_MUTATION = """
mutation BitrecsBulkProducts($query: String!, $groupObjects: Boolean!) {
  bulkOperationRunQuery(query: $query, groupObjects: $groupObjects) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

# `bulkOperation(id:)` exists from API 2026-01; `currentBulkOperation` is deprecated.
BULK_STATUS_QUERY = """
query BitrecsBulkStatus($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url partialDataUrl }
}
"""


def products_page_size(requested: int) -> int:
    """The largest page size up to `requested` whose estimated products query cost stays within 1,000."""
    per_product = _PRODUCT_NODE_COST + 2 + VARIANTS_PER_PRODUCT * _VARIANT_NODE_COST
    return _page_size(requested, per_product)


def orders_page_size(requested: int) -> int:
    per_order = _ORDER_NODE_COST + 2 + LINE_ITEMS_PER_ORDER * _LINE_ITEM_NODE_COST
    return _page_size(requested, per_order)


def _page_size(requested: int, per_node: int) -> int:
    affordable = (MAX_QUERY_COST - 2) // per_node
    return max(1, min(requested, MAX_PAGE_SIZE, affordable))
