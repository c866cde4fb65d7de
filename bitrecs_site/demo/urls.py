from django.urls import path

from bitrecs_site.demo import views

app_name = "demo"

urlpatterns = [
    path("", views.home, name="home"),
    path("products/<str:handle>", views.product, name="product"),
    path("images/<str:handle>.svg", views.image, name="image"),
    path("cart", views.cart, name="cart"),
    path("cart/add", views.cart_add, name="cart-add"),
    path("cart/remove", views.cart_remove, name="cart-remove"),
    path("checkout", views.checkout, name="checkout"),
    path("thanks", views.thanks, name="thanks"),
]
